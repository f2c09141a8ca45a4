//! GObject/GStreamer side of `ptgrestore`: properties, lifecycle, negotiation and per-frame work.
//!
//! Locking: `settings` is only ever held for a copy or an assignment, so property writes from
//! the application (or a GstController) never wait for a frame. `state` is held by the streaming
//! thread for the duration of one engine call. `latency` is separate so a LATENCY query never
//! waits for a frame either. Nested locks are taken in the order
//! swapping -> state -> settings -> active_provider.

use super::latency::LatencyMeter;
use super::settings::{self, LiveSettings, ProviderChoice, Settings};
use super::video;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::BaseTransformMode;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;
use ptgrm::{Engine, ErrorKind, FrameLayout, FrameMut, FrameRef, Provider};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Instant;

pub(super) static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("ptgrestore", gst::DebugColorFlags::empty(), Some("PTG-RM prior-guided restoration")));

/// Exists between start() (READY->PAUSED) and stop().
pub(super) struct State {
    pub(super) engine: Engine,
    /// From the current caps; None until the first caps event.
    layout: Option<FrameLayout>,
    /// Live settings last pushed into `engine`.
    pub(super) applied: LiveSettings,
    /// The provider the element last reported; the engine may leave it on its first frame.
    pub(super) reported: Provider,
}

#[derive(Default)]
pub struct PtgRestore {
    /// While started, `model` here is the model that runs: a live swap writes it only once the
    /// new engine is in place, so property reads never wait for a frame to learn it.
    pub(super) settings: Mutex<Settings>,
    pub(super) state: Mutex<Option<State>>,
    pub(super) latency: Mutex<LatencyMeter>,
    pub(super) active_provider: Mutex<Option<&'static str>>,
    /// Set when strength leaves 0: the engine saw no frames meanwhile, so its prior is stale.
    pub(super) prior_stale: AtomicBool,
    /// Held through a live model swap: concurrent swaps run one after the other.
    pub(super) swapping: Mutex<()>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later property access into another panic.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn path_string(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.to_string_lossy().into_owned())
}

fn path_value(value: &glib::Value) -> Option<PathBuf> {
    value.get::<Option<String>>().expect("type checked upstream").filter(|s| !s.is_empty()).map(PathBuf::from)
}

/// Whether the ONNX Runtime the engine will load has the TensorRT provider compiled in. Loading
/// it here (with the element's explicit path, if any) is what Engine::load would do first anyway;
/// a failure is left for Engine::load to report.
fn tensorrt_compiled_in(options: &ptgrm::EngineOptions) -> bool {
    ptgrm::ortlib::runtime(options.ort_library.as_deref()).is_ok()
        && ptgrm::ortlib::available_providers().is_ok_and(|p| p.iter().any(|name| name.starts_with("Tensorrt")))
}

/// Maps an engine load failure to an element error naming the cause.
fn load_error(model: &Path, provider: ProviderChoice, e: &ptgrm::Error) -> gst::ErrorMessage {
    let provider = ptgrm::ProviderRequest::from(provider).name();
    match e.kind {
        ErrorKind::Model | ErrorKind::Io => {
            let path = model.display().to_string();
            if e.message.contains(&path) {
                gst::error_msg!(gst::ResourceError::OpenRead, ("Cannot load the model: {e}"))
            } else {
                gst::error_msg!(gst::ResourceError::OpenRead, ("Cannot load model bundle {path}: {e}"))
            }
        }
        ErrorKind::Runtime => gst::error_msg!(gst::LibraryError::Init, ("ONNX Runtime is not available: {e}")),
        ErrorKind::Provider => {
            gst::error_msg!(gst::LibraryError::Init, ("Execution provider {provider} is not available: {e}"))
        }
        ErrorKind::InvalidArgument => gst::error_msg!(gst::LibraryError::Settings, ("Invalid setting: {e}")),
        ErrorKind::Inference => {
            gst::error_msg!(gst::LibraryError::Failed, ("Model failed its first run on {provider}: {e}"))
        }
    }
}

impl PtgRestore {
    pub(super) fn is_started(&self) -> bool {
        lock(&self.active_provider).is_some()
    }

    /// strength == 0 passes buffers through untouched (BaseTransform passthrough: no copy, no
    /// engine call). Runs from property writes, including GstController syncs on the streaming
    /// thread, which BaseTransform reads before deciding how to handle the buffer.
    fn update_passthrough(&self, strength: f64) {
        let obj = self.obj();
        let passthrough = strength == 0.0;
        if obj.is_passthrough() == passthrough {
            return;
        }
        gst::debug!(CAT, imp = self, "strength {strength}: passthrough {passthrough}");
        if !passthrough {
            self.prior_stale.store(true, Ordering::Release);
        }
        obj.set_passthrough(passthrough);
        // Passthrough forwards upstream's buffers; processing needs our own pool again.
        obj.reconfigure_src();
    }

    /// Pushes strength / prior settings that changed since the last frame into the engine.
    fn apply_live_settings(&self, state: &mut State) -> Result<(), ptgrm::Error> {
        let live = lock(&self.settings).live;
        if live.strength != state.applied.strength {
            state.engine.set_strength(live.strength as f32)?;
        }
        if live.prior_interval != state.applied.prior_interval {
            state.engine.set_prior_interval(live.prior_interval)?;
        }
        if live.prior_smoothing != state.applied.prior_smoothing {
            state.engine.set_prior_smoothing(live.prior_smoothing as f32)?;
        }
        if live.prior_glide != state.applied.prior_glide {
            state.engine.set_prior_glide(live.prior_glide);
        }
        state.applied = live;
        if self.prior_stale.swap(false, Ordering::AcqRel) {
            state.engine.reset_prior();
        }
        Ok(())
    }

    /// Start-up settings other than `model` shape sessions the running engine cannot change;
    /// accepting them would make the property read back a value that does not run.
    fn refuse_while_running(&self, name: &str, value: &glib::Value) {
        gst::warning!(CAT, imp = self, "{name} = {value:?} refused: the element is running");
        gst::element_imp_warning!(
            self,
            gst::LibraryError::Settings,
            ("{name} cannot change while running; stop the pipeline (READY) first")
        );
    }

    /// Loads `model` with `settings` (blocks: sessions are created and warmed up), announcing a
    /// TensorRT engine build first since that can take minutes.
    pub(super) fn load_engine(&self, model: &Path, settings: &Settings) -> Result<Engine, ptgrm::Error> {
        let options = settings.engine_options();
        gst::info!(CAT, imp = self, "loading {} with provider {:?}", model.display(), settings.provider);
        if matches!(settings.provider, ProviderChoice::Auto | ProviderChoice::TensorRt) && tensorrt_compiled_in(&options) {
            let cache = path_string(&settings.engine_cache_dir)
                .map_or_else(|| "no engine-cache-dir: rebuilt at every start".into(), |d| format!("cached in {d}"));
            let text = format!("Preparing TensorRT engines; a first build can take minutes ({cache})");
            // gst-launch prints only the debug part of INFO messages: give the text there too.
            gst::element_imp_info!(self, gst::LibraryError::Init, ("{text}"), ["{text}"]);
        }
        let started = Instant::now();
        let engine = Engine::load(model, &options).inspect_err(|e| {
            gst::error!(CAT, imp = self, "loading {} failed: {e}", model.display());
        })?;
        gst::info!(
            CAT,
            imp = self,
            "model {:?} ready on {} in {:.2?}",
            engine.manifest().name,
            engine.active_provider(),
            started.elapsed()
        );
        Ok(engine)
    }

    /// Bus messages once `engine` runs: auto's skipped providers (WARNING) and what runs (INFO).
    /// Returns a closure so a swap can post them after the engine is in place.
    pub(super) fn running_messages<'a>(&'a self, engine: &Engine, choice: ProviderChoice) -> impl FnOnce() + use<'a> {
        let active = engine.active_provider().name();
        let skipped = engine.provider_log().join("; ");
        let text = format!("Model {:?} running on {active}", engine.manifest().name);
        move || {
            if choice == ProviderChoice::Auto && !skipped.is_empty() {
                gst::element_imp_warning!(self, gst::LibraryError::Init, ("Provider auto fell back to {active}: {skipped}"));
            }
            gst::element_imp_info!(self, gst::LibraryError::Init, ("{text}"), ["{text}"]);
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for PtgRestore {
    const NAME: &'static str = "GstPtgRestore";
    type Type = super::PtgRestore;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for PtgRestore {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let default_model = path_string(&ptgrm::bundle::default_model_dir());
            let (default_width, default_height) = settings::default_max_resolution();
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model bundle")
                    .blurb("Model bundle directory (manifest.json + ONNX graphs). Default: $PTGRM_MODEL, else the installed low-light model. \
                            Set while running, the new model is loaded on the calling thread (which blocks meanwhile) and replaces the old one between two frames; \
                            if it fails to load, a WARNING is posted and the old one keeps running")
                    .default_value(default_model.as_deref())
                    .mutable_playing()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("provider", ProviderChoice::Auto)
                    .nick("Execution provider")
                    .blurb("ONNX Runtime execution provider; an explicit one fails start-up when unavailable, auto falls back with a warning")
                    .mutable_ready()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecInt::builder("device-id")
                    .nick("GPU device")
                    .blurb("CUDA device index for the tensorrt and cuda providers")
                    .minimum(0)
                    .maximum(255)
                    .default_value(0)
                    .mutable_ready()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecBoolean::builder("fp16")
                    .nick("FP16")
                    .blurb("Let TensorRT run in half precision (faster, slightly different output)")
                    .default_value(false)
                    .mutable_ready()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecString::builder("engine-cache-dir")
                    .nick("TensorRT engine cache")
                    .blurb("Directory where TensorRT engines and timing caches are kept between runs (unset: no cache, every start rebuilds)")
                    .mutable_ready()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("CPU threads")
                    .blurb("Intra-op threads of the CPU provider (0: ONNX Runtime's default, one per core)")
                    .maximum(1024)
                    .default_value(0)
                    .mutable_ready()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecBoolean::builder("spinning")
                    .nick("Spinning threads")
                    .blurb("Idle CPU threads busy-wait for the next frame's work (false: they sleep and leave the cores to the rest of the pipeline, e.g. the encoder)")
                    .default_value(ptgrm::EngineOptions::default().spinning)
                    .mutable_ready()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecUInt::builder("prior-interval")
                    .nick("Prior interval")
                    .blurb("Frames between prior updates (1: every frame); the prior changes slowly, so larger values save time on static scenes")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(settings::DEFAULT_PRIOR_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("prior-smoothing")
                    .nick("Prior smoothing")
                    .blurb("Weight kept from the previous prior at each update (0: none); damps flicker")
                    .minimum(0.0)
                    .maximum(settings::MAX_PRIOR_SMOOTHING)
                    .default_value(settings::DEFAULT_PRIOR_SMOOTHING)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("prior-glide")
                    .nick("Prior glide")
                    .blurb("Between prior updates move the prior a step per frame to the new one (false: switch at once, which can show as a brightness step)")
                    .default_value(settings::DEFAULT_PRIOR_GLIDE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("strength")
                    .nick("Strength")
                    .blurb("Blend from input (0: frames pass through untouched) to fully restored (1)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(settings::DEFAULT_STRENGTH)
                    .mutable_playing()
                    .controllable()
                    .build(),
                glib::ParamSpecUInt::builder("tile-size")
                    .nick("Tile size")
                    .blurb("Frames with a side larger than this run in overlapping tiles to bound memory (0: never tile)")
                    .maximum(settings::MAX_SIDE)
                    .default_value(settings::default_tile_size())
                    .mutable_ready()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecUInt::builder("max-width")
                    .nick("Maximum width")
                    .blurb("Widest frame the TensorRT optimisation profile is sized for")
                    .minimum(1)
                    .maximum(settings::MAX_SIDE)
                    .default_value(default_width)
                    .mutable_ready()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecUInt::builder("max-height")
                    .nick("Maximum height")
                    .blurb("Tallest frame the TensorRT optimisation profile is sized for")
                    .minimum(1)
                    .maximum(settings::MAX_SIDE)
                    .default_value(default_height)
                    .mutable_ready()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecString::builder("ort-library")
                    .nick("ONNX Runtime library")
                    .blurb("Path of libonnxruntime.so to load (unset: $ORT_DYLIB_PATH, the path scripts/setup.sh recorded, the system library). One library serves the whole process")
                    .mutable_ready()
                    .explicit_notify()
                    .build(),
                glib::ParamSpecString::builder("active-provider")
                    .nick("Active provider")
                    .blurb("Execution provider in use (tensorrt, cuda or cpu) once started, else NULL")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        if name == "model" && self.is_started() {
            self.swap_model(path_value(value));
            return;
        }
        if pspec.flags().contains(gst::PARAM_FLAG_MUTABLE_READY) && self.is_started() {
            self.refuse_while_running(name, value);
            return;
        }
        let mut s = lock(&self.settings);
        match name {
            "model" => s.model = path_value(value),
            "provider" => s.provider = value.get().expect("type checked upstream"),
            "device-id" => s.device_id = value.get().expect("type checked upstream"),
            "fp16" => s.fp16 = value.get().expect("type checked upstream"),
            "engine-cache-dir" => s.engine_cache_dir = path_value(value),
            "threads" => s.threads = value.get().expect("type checked upstream"),
            "spinning" => s.spinning = value.get().expect("type checked upstream"),
            "tile-size" => s.tile_size = value.get().expect("type checked upstream"),
            "ort-library" => s.ort_library = path_value(value),
            "max-width" => s.max_width = value.get().expect("type checked upstream"),
            "max-height" => s.max_height = value.get().expect("type checked upstream"),
            "prior-interval" => s.live.prior_interval = value.get().expect("type checked upstream"),
            "prior-smoothing" => s.live.prior_smoothing = value.get().expect("type checked upstream"),
            "prior-glide" => s.live.prior_glide = value.get().expect("type checked upstream"),
            "strength" => {
                let strength: f64 = value.get().expect("type checked upstream");
                s.live.strength = strength;
                drop(s);
                self.update_passthrough(strength);
                return;
            }
            _ => unreachable!("unknown property {name}"),
        }
        drop(s);
        gst::debug!(CAT, imp = self, "{name} set to {value:?}");
        if pspec.flags().contains(glib::ParamFlags::EXPLICIT_NOTIFY) {
            // Start-up properties notify only when they take a value (not when refused or when
            // a model swap fails).
            self.obj().notify_by_pspec(pspec);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "model" => path_string(&s.model).to_value(),
            "provider" => s.provider.to_value(),
            "device-id" => s.device_id.to_value(),
            "fp16" => s.fp16.to_value(),
            "engine-cache-dir" => path_string(&s.engine_cache_dir).to_value(),
            "threads" => s.threads.to_value(),
            "spinning" => s.spinning.to_value(),
            "tile-size" => s.tile_size.to_value(),
            "ort-library" => path_string(&s.ort_library).to_value(),
            "max-width" => s.max_width.to_value(),
            "max-height" => s.max_height.to_value(),
            "prior-interval" => s.live.prior_interval.to_value(),
            "prior-smoothing" => s.live.prior_smoothing.to_value(),
            "prior-glide" => s.live.prior_glide.to_value(),
            "strength" => s.live.strength.to_value(),
            "active-provider" => lock(&self.active_provider).map(str::to_owned).to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        // Late frames are dropped before the engine sees them and counted in QoS messages.
        obj.set_qos(true);
        self.update_passthrough(lock(&self.settings).live.strength);
    }
}

impl GstObjectImpl for PtgRestore {}

impl ElementImpl for PtgRestore {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "PTG-RM restoration",
                "Filter/Effect/Video",
                "Restores degraded video (low light, noise, rain, blur) with a prior-guided refinement model (PTG-RM, CVPR 2024) on ONNX Runtime",
                "ptgrm developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new().format_list(video::FORMATS).build();
            vec![
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps).unwrap(),
                gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &caps).unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for PtgRestore {
    const MODE: BaseTransformMode = BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let model = settings.model.clone().ok_or_else(|| {
            gst::error_msg!(
                gst::ResourceError::NotFound,
                ("No model bundle: set the model property or PTGRM_MODEL, or install the default low-light model (see README)")
            )
        })?;
        let engine = self.load_engine(&model, &settings).map_err(|e| load_error(&model, settings.provider, &e))?;
        self.running_messages(&engine, settings.provider)();
        let active = engine.active_provider();
        *lock(&self.state) = Some(State { engine, layout: None, applied: settings.live, reported: active });
        *lock(&self.latency) = LatencyMeter::default();
        self.prior_stale.store(false, Ordering::Release);
        *lock(&self.active_provider) = Some(active.name());
        self.obj().notify("active-provider");
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = None;
        let was_started = lock(&self.active_provider).take().is_some();
        if was_started {
            self.obj().notify("active-provider");
        }
        gst::debug!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn before_transform(&self, inbuf: &gst::BufferRef) {
        // GstController-bound properties (strength) follow the buffer's stream time.
        let obj = self.obj();
        let segment = obj.segment();
        let Some(segment) = segment.downcast_ref::<gst::ClockTime>() else { return };
        if let Some(stream_time) = segment.to_stream_time(inbuf.pts()) {
            let _ = obj.sync_values(stream_time);
        }
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if matches!(event.view(), gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_)) {
            // After a seek or a new stream the previous scene's prior is wrong.
            if let Some(state) = lock(&self.state).as_mut() {
                gst::debug!(CAT, imp = self, "{:?}: resetting the prior", event.type_());
                state.engine.reset_prior();
            }
        }
        self.parent_sink_event(event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        if direction != gst::PadDirection::Src || query.type_() != gst::QueryType::Latency {
            return BaseTransformImplExt::parent_query(self, direction, query);
        }
        if !BaseTransformImplExt::parent_query(self, direction, query) {
            return false;
        }
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let ours = gst::ClockTime::from_nseconds(lock(&self.latency).answer().as_nanos() as u64);
            let (live, min, max) = q.result();
            gst::debug!(CAT, imp = self, "latency: upstream {min} .. {max:?}, ours {ours}");
            q.set(live, min + ours, max.map(|m| m + ours));
        }
        true
    }
}

impl VideoFilterImpl for PtgRestore {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        if in_info.format() != out_info.format() || in_info.width() != out_info.width() || in_info.height() != out_info.height() {
            return Err(gst::loggable_error!(CAT, "input {incaps} and output {outcaps} differ in format or size"));
        }
        let layout = video::layout(in_info).ok_or_else(|| gst::loggable_error!(CAT, "unsupported format {}", in_info.format()))?;
        let (color, exact) = video::yuv_color(in_info);
        let yuv = layout.format.planes() > 1 || layout.format == ptgrm::PixelFormat::Yuy2;
        if yuv && !exact {
            gst::warning!(CAT, imp = self, "colorimetry {} is approximated as {color:?}", in_info.colorimetry());
        }
        gst::info!(CAT, imp = self, "negotiated {}x{} {} {:?}", layout.width, layout.height, layout.format.name(), layout.color);
        let mut state = lock(&self.state);
        let state = state.as_mut().ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        state.layout = Some(layout);
        Ok(())
    }

    fn transform_frame(
        &self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = lock(&self.state);
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let layout = state.layout.ok_or(gst::FlowError::NotNegotiated)?;
        if let Err(e) = self.apply_live_settings(state) {
            gst::element_imp_error!(self, gst::LibraryError::Settings, ("Cannot apply settings: {e}"));
            return Err(gst::FlowError::Error);
        }
        let in_layout = video::with_strides(layout, inframe.plane_stride());
        let out_layout = video::with_strides(layout, outframe.plane_stride());
        let (Some(in_layout), Some(out_layout)) = (in_layout, out_layout) else {
            gst::element_imp_error!(self, gst::StreamError::Format, ("Negative strides are not supported"));
            return Err(gst::FlowError::NotSupported);
        };
        if video::has_fourth_byte(layout.format) {
            // The engine writes colour only; alpha (and the x byte) must come from the input,
            // not from whatever the pooled output buffer held before.
            if let Err(e) = inframe.copy(outframe) {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("Copying alpha failed: {e}"));
                return Err(gst::FlowError::Error);
            }
        }
        let in_planes = inframe.planes_data();
        let [p0, p1, p2, _] = outframe.planes_data_mut();
        let started = Instant::now();
        let result = FrameRef::new(in_layout, &in_planes[..3])
            .and_then(|input| Ok((input, FrameMut::new(out_layout, [p0, p1, p2])?)))
            .and_then(|(input, mut output)| state.engine.process(&input, &mut output));
        // The first frame may have moved the engine to another provider (also when it failed).
        let change = self.take_provider_change(state);
        drop(guard);
        if let Some(change) = change {
            self.announce_provider_change(change);
        }
        if let Err(e) = result {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("Processing a frame failed: {e}"));
            return Err(gst::FlowError::Error);
        }
        let took = started.elapsed();
        gst::trace!(CAT, imp = self, "frame processed in {took:.2?}");
        if lock(&self.latency).record(took) {
            gst::debug!(CAT, imp = self, "processing latency grew to {took:.2?}: asking for a latency recalculation");
            let _ = self.obj().post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
