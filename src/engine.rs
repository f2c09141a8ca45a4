//! The engine: the per-frame path (read -> prior -> padded/tiled inference -> strength blend ->
//! write) over a loaded bundle's sessions ([`crate::sessions`]) and the prior schedule.
//!
//! After the first frame of a given size every buffer is reused, so steady-state frames do not
//! allocate on our side (ONNX Runtime's own arena handles its tensors).

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::frame::{FrameMut, FrameRef, InputRange, Planar, read_frame, write_frame};
use crate::prior::{GridWindow, PriorSchedule, prior_input_size, resize_bilinear, window_grid};
use crate::providers::{Provider, ProviderRequest};
use crate::sessions::{Output, Sessions};
use crate::tiling::TilePlan;
use ptgrm_bundle::Manifest;
use std::path::{Path, PathBuf};

/// Prior interval for video (the element's default, and `ptgrm bench`'s so both report
/// comparable numbers). The engine's own default is 1 because it also scores unrelated stills;
/// video frames share their content, and the prior network costs as much as the default
/// model's whole frame on a CPU: twice a second at 30 fps keeps it current at a fifteenth of
/// the cost.
pub const VIDEO_PRIOR_INTERVAL: u32 = 15;

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// ONNX Runtime library; None: ORT_DYLIB_PATH, the setup's path, then the system's.
    pub ort_library: Option<PathBuf>,
    pub provider: ProviderRequest,
    pub device_id: i32,
    /// TensorRT fp16 kernels.
    pub fp16: bool,
    /// TensorRT engine and timing cache directory.
    pub engine_cache_dir: Option<PathBuf>,
    /// CPU intra-op threads; 0 = ONNX Runtime's default (one per core).
    pub threads: usize,
    /// Let idle intra-op threads spin (busy-wait) for the next job instead of sleeping (ONNX
    /// Runtime's own default). Off by default: in decode -> ptgrestore -> x264enc -> mp4mux on
    /// 2 cores, spinning threads took the encoder's cores (640x360: 44.6 fps spinning, 52.2
    /// sleeping; 1280x720: 15.5 vs 16.0; examples/pipelines/threads.sh, docs/element.md).
    pub spinning: bool,
    /// Largest (width, height) TensorRT's optimization profile must cover.
    pub max_resolution: (usize, usize),
    /// Frames with a side longer than this run in overlapping tiles; 0 = never tile.
    pub tile_size: usize,
    pub tile_overlap: usize,
    /// Recompute the prior every N frames (1 = every frame).
    pub prior_interval: u32,
    /// Weight in [0,1) kept from the previous prior when a new one is computed.
    pub prior_smoothing: f32,
    /// Between prior runs, move the prior a step per frame to the new one instead of switching
    /// at once (see [`crate::prior`]: a switch shows as a brightness step on video).
    pub prior_glide: bool,
    /// 0 = input unchanged, 1 = fully refined output.
    pub strength: f32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            ort_library: None,
            provider: ProviderRequest::Auto,
            device_id: 0,
            fp16: false,
            engine_cache_dir: None,
            threads: 0,
            spinning: false,
            max_resolution: (1920, 1080),
            tile_size: 2048,
            tile_overlap: 32,
            prior_interval: 1,
            prior_smoothing: 0.0,
            prior_glide: true,
            strength: 1.0,
        }
    }
}

/// Working buffers, grown to the largest frame/tile seen and then reused.
#[derive(Default)]
struct Buffers {
    input: Planar,
    prior_in: Planar,
    tile_in: Vec<f32>,
    /// A per-region prior read for the current tile's window.
    tile_prior: Vec<f32>,
    refined: Planar,
    base: Planar,
    plan: TilePlan,
}

pub struct Engine {
    bundle: Bundle,
    options: EngineOptions,
    range: InputRange,
    sessions: Sessions,
    prior: PriorSchedule,
    buf: Buffers,
}

impl Engine {
    pub fn load(bundle_dir: impl AsRef<Path>, options: &EngineOptions) -> Result<Engine> {
        check_options(options)?;
        crate::ortlib::runtime(options.ort_library.as_deref())?;
        let bundle = Bundle::load(bundle_dir.as_ref())?;
        let prior =
            PriorSchedule::new(bundle.manifest.prior.dim as usize, options.prior_interval, options.prior_smoothing, options.prior_glide)?;
        let sessions = Sessions::open(&bundle, options)?;
        Ok(Engine {
            range: InputRange::from_manifest(bundle.manifest.input_range),
            bundle,
            options: options.clone(),
            sessions,
            prior,
            buf: Buffers::default(),
        })
    }

    /// The provider the model runs on now. It can change once, on the first frame, when that
    /// frame fails on a GPU provider and the engine falls back: read it after each frame.
    pub fn active_provider(&self) -> Provider {
        self.sessions.provider()
    }

    /// Why each provider tried before the active one was skipped or left, oldest first (grows
    /// when the first frame falls back).
    pub fn provider_log(&self) -> &[String] {
        self.sessions.log()
    }

    pub fn manifest(&self) -> &Manifest {
        &self.bundle.manifest
    }

    pub fn bundle_dir(&self) -> &Path {
        &self.bundle.dir
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn strength(&self) -> f32 {
        self.options.strength
    }

    pub fn set_strength(&mut self, s: f32) -> Result<()> {
        if !(0.0..=1.0).contains(&s) {
            return Err(Error::invalid(format!("strength {s} must be in [0, 1]")));
        }
        self.options.strength = s;
        Ok(())
    }

    pub fn set_prior_interval(&mut self, n: u32) -> Result<()> {
        self.prior.set_interval(n)?;
        self.options.prior_interval = n;
        Ok(())
    }

    pub fn set_prior_smoothing(&mut self, a: f32) -> Result<()> {
        self.prior.set_smoothing(a)?;
        self.options.prior_smoothing = a;
        Ok(())
    }

    pub fn set_prior_glide(&mut self, glide: bool) {
        self.prior.set_glide(glide);
        self.options.prior_glide = glide;
    }

    /// The next frame computes a fresh prior (call after a seek or a scene cut).
    pub fn reset_prior(&mut self) {
        self.prior.reset();
    }

    /// The prior vector currently guiding the refiner.
    pub fn prior_value(&self) -> &[f32] {
        self.prior.value()
    }

    /// The refined frame, blended with the input by `strength`.
    pub fn process(&mut self, input: &FrameRef, output: &mut FrameMut) -> Result<()> {
        self.process_outputs(input, Some(output), None)
    }

    /// Refined (blended by strength) and/or base outputs from one inference.
    pub fn process_outputs(&mut self, input: &FrameRef, refined: Option<&mut FrameMut>, base: Option<&mut FrameMut>) -> Result<()> {
        let (w, h) = (input.layout.width, input.layout.height);
        for out in [refined.as_deref(), base.as_deref()].into_iter().flatten() {
            if (out.layout.width, out.layout.height) != (w, h) {
                return Err(Error::invalid(format!("output frame is {}x{}, input is {w}x{h}", out.layout.width, out.layout.height)));
            }
        }
        let strength = self.options.strength;
        if base.is_none() {
            if let Some(out) = refined {
                if strength == 0.0 {
                    return copy_or_convert(input, out, &mut self.buf.input, self.range);
                }
                return self.infer(input, true, false).map(|_| self.write_refined(strength, out));
            }
            return Ok(());
        }
        let want_refined = refined.is_some();
        self.infer(input, want_refined, true)?;
        if let Some(out) = refined {
            self.write_refined(strength, out);
        }
        if let Some(out) = base {
            write_frame(&self.buf.base, out, self.range);
        }
        Ok(())
    }

    fn write_refined(&mut self, strength: f32, out: &mut FrameMut) {
        let b = &mut self.buf;
        if strength < 1.0 {
            // Blend with the displayable (clamped) result, so strength 0.5 is halfway on screen.
            for (r, i) in b.refined.data.iter_mut().zip(&b.input.data) {
                *r = i + strength * (r.clamp(0.0, 1.0) - i);
            }
        }
        write_frame(&b.refined, out, self.range);
    }

    /// Runs the model on `input` into buf.refined / buf.base, falling back to the next provider
    /// if the very first frame fails on a GPU provider.
    fn infer(&mut self, input: &FrameRef, want_refined: bool, want_base: bool) -> Result<()> {
        read_frame(input, &mut self.buf.input, self.range);
        loop {
            match self.infer_planar(want_refined, want_base) {
                Ok(()) => {
                    self.sessions.frame_done();
                    return Ok(());
                }
                Err(e) => {
                    if !self.sessions.fall_back(&self.bundle, &self.options, &e)? {
                        return Err(e);
                    }
                    // The prior may come from the provider that failed.
                    self.prior.reset();
                }
            }
        }
    }

    fn infer_planar(&mut self, want_refined: bool, want_base: bool) -> Result<()> {
        let (w, h) = (self.buf.input.width, self.buf.input.height);
        // Refiner-less outputs need no prior.
        let need_refined = want_refined || self.sessions.is_merged();
        if need_refined && self.prior.due() {
            self.update_prior()?;
        }
        let (range, b) = (self.range, &mut self.buf);
        if b.plan.size() != (w, h) {
            let pad_multiple = self.bundle.manifest.pad_multiple as usize;
            b.plan = TilePlan::new(w, h, self.options.tile_size, self.options.tile_overlap, pad_multiple);
        }
        let plan = &b.plan;
        plan.start(&mut b.refined);
        plan.start(&mut b.base);
        for tile in plan.tiles() {
            plan.fill(&b.input, tile, range, &mut b.tile_in);
            let (refined, base) = (&mut b.refined, &mut b.base);
            let sink =
                |out: Output, data: &[f32]| plan.put(tile, data, range, if out == Output::Base { &mut *base } else { &mut *refined });
            let (pw, ph) = (tile.padded_width, tile.padded_height);
            let prior = match self.bundle.manifest.prior.grid {
                // A per-region prior is read for the window R sees: the tile and its padding.
                Some(cells) => {
                    let window = GridWindow::of_pixels(tile.x.start, tile.y.start, pw, ph, w, h);
                    window_grid(self.prior.value(), cells as usize, window, &mut b.tile_prior);
                    &b.tile_prior[..]
                }
                None => self.prior.value(),
            };
            self.sessions.run_net(&b.tile_in, pw, ph, prior, want_refined, want_base, sink)?;
        }
        if want_refined {
            plan.finish(&mut b.refined);
        }
        if want_base {
            plan.finish(&mut b.base);
        }
        Ok(())
    }

    fn update_prior(&mut self) -> Result<()> {
        let m = &self.bundle.manifest;
        let dim = m.prior.dim as usize;
        if !self.sessions.has_prior_graph() {
            // prior.kind "none": g = 0 (the ablation / prior-free bundles).
            self.prior.update(&vec![0.0; dim]);
            return Ok(());
        }
        let b = &mut self.buf;
        let (pw, ph) = prior_input_size(m.prior.input_size, b.input.width, b.input.height);
        resize_bilinear(&b.input, &mut b.prior_in, pw, ph);
        if !self.range.is_unit() {
            let range = self.range;
            b.prior_in.data.iter_mut().for_each(|v| *v = range.to_model(*v));
        }
        let prior = &mut self.prior;
        self.sessions.run_prior(&b.prior_in.data, pw, ph, dim, |g| prior.update(g))
    }
}

fn check_options(o: &EngineOptions) -> Result<()> {
    if !(0.0..=1.0).contains(&o.strength) {
        return Err(Error::invalid(format!("strength {} must be in [0, 1]", o.strength)));
    }
    if o.tile_size > 0 && o.tile_size < 64 {
        return Err(Error::invalid(format!("tile size {} is below the minimum of 64 (0 disables tiling)", o.tile_size)));
    }
    if o.tile_size > 0 && o.tile_overlap * 2 >= o.tile_size {
        return Err(Error::invalid(format!("tile overlap {} must be less than half the tile size {}", o.tile_overlap, o.tile_size)));
    }
    if o.max_resolution.0 == 0 || o.max_resolution.1 == 0 {
        return Err(Error::invalid("max resolution must be non-zero"));
    }
    Ok(())
}

/// strength = 0: the input unchanged; a byte copy when the layouts match (bit-exact).
fn copy_or_convert(input: &FrameRef, out: &mut FrameMut, scratch: &mut Planar, range: InputRange) -> Result<()> {
    if !crate::frame::copy_frame(input, out) {
        read_frame(input, scratch, range);
        write_frame(scratch, out, range);
    }
    Ok(())
}
