//! The engine: a loaded bundle's sessions on a verified provider, the prior schedule, and the
//! per-frame path (read -> prior -> padded/tiled inference -> strength blend -> write).
//!
//! After the first frame of a given size every buffer is reused, so steady-state frames do not
//! allocate on our side (ONNX Runtime's own arena handles its tensors).

use crate::bundle::{Bundle, Role, check_session_io};
use crate::error::{Error, ErrorKind, Result};
use crate::frame::{FrameMut, FrameRef, Planar, read_frame, write_frame};
use crate::prior::{PriorSchedule, prior_input_size, resize_bilinear};
use crate::providers::{Provider, ProviderRequest, ProviderSettings, build_session};
use crate::tiling::{accumulate, add_weights, fill_window, spans};
use ort::session::Session;
use ort::value::TensorRef;
use ptgrm_bundle::{Manifest, io};
use std::path::{Path, PathBuf};

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
    /// Largest (width, height) TensorRT's optimization profile must cover.
    pub max_resolution: (usize, usize),
    /// Frames with a side longer than this run in overlapping tiles; 0 = never tile.
    pub tile_size: usize,
    pub tile_overlap: usize,
    /// Recompute the prior every N frames (1 = every frame).
    pub prior_interval: u32,
    /// Weight in [0,1) kept from the previous prior when a new one is computed.
    pub prior_smoothing: f32,
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
            max_resolution: (1920, 1080),
            tile_size: 2048,
            tile_overlap: 32,
            prior_interval: 1,
            prior_smoothing: 0.0,
            strength: 1.0,
        }
    }
}

enum Net {
    Split { base: Session, refiner: Session },
    Merged(Session),
}

struct Sessions {
    prior: Option<Session>,
    net: Net,
}

/// Working buffers, grown to the largest frame/tile seen and then reused.
#[derive(Default)]
struct Buffers {
    input: Planar,
    prior_in: Planar,
    tile_in: Vec<f32>,
    refined: Planar,
    base: Planar,
    wsum: Vec<f32>,
}

pub struct Engine {
    bundle: Bundle,
    options: EngineOptions,
    provider: Provider,
    provider_log: Vec<String>,
    /// Providers not yet tried, for a fallback if the first real frame fails.
    untried: Vec<Provider>,
    frames_done: u64,
    sessions: Sessions,
    prior: PriorSchedule,
    buf: Buffers,
}

impl Engine {
    pub fn load(bundle_dir: impl AsRef<Path>, options: &EngineOptions) -> Result<Engine> {
        check_options(options)?;
        crate::ortlib::runtime(options.ort_library.as_deref())?;
        let bundle = Bundle::load(bundle_dir.as_ref())?;
        let prior = PriorSchedule::new(bundle.manifest.prior.dim as usize, options.prior_interval, options.prior_smoothing)?;
        let mut log = Vec::new();
        let candidates = options.provider.candidates();
        for (i, &provider) in candidates.iter().enumerate() {
            match open_sessions(&bundle, options, provider) {
                Ok(sessions) => {
                    for reason in &log {
                        log::warn!("{reason}");
                    }
                    log::info!("ptgrm: model {} runs on {provider}", bundle.manifest.name);
                    return Ok(Engine {
                        bundle,
                        options: options.clone(),
                        provider,
                        provider_log: log,
                        untried: candidates[i + 1..].to_vec(),
                        frames_done: 0,
                        sessions,
                        prior,
                        buf: Buffers::default(),
                    });
                }
                // A broken model fails the same way everywhere: report it as such at once.
                Err(e) if e.kind == ErrorKind::Model => return Err(e),
                Err(e) if options.provider != ProviderRequest::Auto => return Err(e),
                Err(e) => log.push(format!("{provider} unavailable, falling back: {e}")),
            }
        }
        Err(Error::new(ErrorKind::Provider, format!("no execution provider could run the model:\n  {}", log.join("\n  "))))
    }

    pub fn active_provider(&self) -> Provider {
        self.provider
    }

    /// Why each provider tried before the active one was skipped.
    pub fn provider_log(&self) -> &[String] {
        &self.provider_log
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
                return Err(Error::invalid(format!(
                    "output frame is {}x{}, input is {w}x{h}",
                    out.layout.width, out.layout.height
                )));
            }
        }
        let strength = self.options.strength;
        if base.is_none() {
            if let Some(out) = refined {
                if strength == 0.0 {
                    return copy_or_convert(input, out, &mut self.buf.input);
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
            write_frame(&self.buf.base, out);
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
        write_frame(&b.refined, out);
    }

    /// Runs the model on `input` into buf.refined / buf.base, falling back to the next provider
    /// if the very first frame fails on a GPU provider.
    fn infer(&mut self, input: &FrameRef, want_refined: bool, want_base: bool) -> Result<()> {
        read_frame(input, &mut self.buf.input);
        loop {
            match self.infer_planar(want_refined, want_base) {
                Ok(()) => {
                    self.frames_done += 1;
                    return Ok(());
                }
                Err(e) if self.frames_done == 0 && !self.untried.is_empty() => {
                    let next = self.untried.remove(0);
                    let reason = format!("{} failed on the first frame, falling back to {next}: {e}", self.provider);
                    log::warn!("{reason}");
                    self.provider_log.push(reason);
                    self.sessions = open_sessions(&self.bundle, &self.options, next)?;
                    self.provider = next;
                    self.prior.reset();
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn infer_planar(&mut self, want_refined: bool, want_base: bool) -> Result<()> {
        let m = &self.bundle.manifest;
        let (w, h) = (self.buf.input.width, self.buf.input.height);
        let [lo, hi] = m.input_range;
        let (scale, offset) = (hi - lo, lo);
        let pm = m.pad_multiple as usize;
        // Refiner-less outputs need no prior.
        let need_refined = want_refined || matches!(self.sessions.net, Net::Merged(_));
        if need_refined && self.prior.due() {
            self.update_prior(scale, offset)?;
        }
        let tile = self.options.tile_size;
        let overlap = self.options.tile_overlap;
        let (xs, ys) = if tile > 0 && (w > tile || h > tile) {
            (spans(w, tile, overlap), spans(h, tile, overlap))
        } else {
            (spans(w, 0, 0), spans(h, 0, 0))
        };
        let single = xs.len() == 1 && ys.len() == 1;
        let b = &mut self.buf;
        b.refined.reshape(w, h);
        b.base.reshape(w, h);
        if !single {
            b.refined.data.fill(0.0);
            b.base.data.fill(0.0);
            b.wsum.clear();
            b.wsum.resize(w * h, 0.0);
        }
        let inv = 1.0 / scale;
        for sy in &ys {
            for sx in &xs {
                let (pw, ph) = (padded(sx.len, pm), padded(sy.len, pm));
                fill_window(&b.input, sx.start, sy.start, pw, ph, scale, offset, &mut b.tile_in);
                let (refined, base) = (&mut b.refined, &mut b.base);
                let sink = |out: Output, tile: &[f32]| {
                    let acc = if out == Output::Base { &mut *base } else { &mut *refined };
                    if single {
                        crop_into(tile, pw, inv, offset, acc);
                    } else {
                        accumulate(tile, pw, ph, *sx, *sy, overlap, inv, offset, acc);
                    }
                };
                run_net(&mut self.sessions.net, &b.tile_in, pw, ph, self.prior.value(), want_refined, want_base, sink)?;
                if !single {
                    add_weights(*sx, *sy, overlap, w, h, &mut b.wsum);
                }
            }
        }
        if !single {
            let n = w * h;
            for (acc, used) in [(&mut b.refined, want_refined), (&mut b.base, want_base)] {
                if used {
                    for c in 0..3 {
                        for (v, s) in acc.data[c * n..(c + 1) * n].iter_mut().zip(&b.wsum) {
                            *v /= s;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn update_prior(&mut self, scale: f32, offset: f32) -> Result<()> {
        let m = &self.bundle.manifest;
        let dim = m.prior.dim as usize;
        let Some(session) = self.sessions.prior.as_mut() else {
            // prior.kind "none": g = 0 (the ablation / prior-free bundles).
            self.prior.update(&vec![0.0; dim]);
            return Ok(());
        };
        let b = &mut self.buf;
        let (pw, ph) = prior_input_size(m.prior.input_size, b.input.width, b.input.height);
        resize_bilinear(&b.input, &mut b.prior_in, pw, ph);
        if scale != 1.0 || offset != 0.0 {
            b.prior_in.data.iter_mut().for_each(|v| *v = *v * scale + offset);
        }
        let outputs = session
            .run(ort::inputs![io::IMAGE => tensor([1, 3, ph, pw], &b.prior_in.data)?])
            .map_err(|e| inference("prior", e))?;
        let (_, g) = outputs[io::PRIOR].try_extract_tensor::<f32>().map_err(|e| inference("prior output", e))?;
        if g.len() != dim {
            return Err(Error::model(format!("prior graph returned {} values, the manifest says prior.dim = {dim}", g.len())));
        }
        if g.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(ErrorKind::Inference, "prior graph returned NaN or infinity"));
        }
        self.prior.update(g);
        Ok(())
    }
}

fn padded(len: usize, multiple: usize) -> usize {
    // Very small frames are padded up to 16 so normalisation layers see enough pixels.
    len.max(16).div_ceil(multiple) * multiple
}

fn tensor<'a>(shape: [usize; 4], data: &'a [f32]) -> Result<TensorRef<'a, f32>> {
    let n: usize = shape.iter().product();
    TensorRef::from_array_view((shape, &data[..n])).map_err(|e| inference("input tensor", e))
}

fn inference(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Inference, format!("{what}: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Base,
    Refined,
}

/// Crops a single whole-frame tile (row length `pw`) into `acc`, mapping back to [0,1].
fn crop_into(tile: &[f32], pw: usize, inv: f32, offset: f32, acc: &mut Planar) {
    let (w, h) = (acc.width, acc.height);
    let ph = tile.len() / (3 * pw);
    for c in 0..3 {
        for y in 0..h {
            let src = &tile[(c * ph + y) * pw..][..w];
            let dst = &mut acc.data[(c * h + y) * w..][..w];
            if inv == 1.0 && offset == 0.0 {
                dst.copy_from_slice(src);
            } else {
                for (d, v) in dst.iter_mut().zip(src) {
                    *d = (v - offset) * inv;
                }
            }
        }
    }
}

fn output<'a>(outputs: &'a ort::session::SessionOutputs, name: &str, expect: usize) -> Result<&'a [f32]> {
    let (_, v) = outputs[name].try_extract_tensor::<f32>().map_err(|e| inference(name, e))?;
    if v.len() != expect {
        return Err(Error::model(format!("graph output {name:?} has {} values, expected {expect} (3 x padded H x W)", v.len())));
    }
    Ok(v)
}

/// One padded tile through the network; hands F's and R's outputs to `sink` straight from
/// ONNX Runtime's buffers (no intermediate copy; F's output feeds R directly).
#[allow(clippy::too_many_arguments)]
fn run_net(
    net: &mut Net,
    image: &[f32],
    pw: usize,
    ph: usize,
    prior: &[f32],
    want_refined: bool,
    want_base: bool,
    mut sink: impl FnMut(Output, &[f32]),
) -> Result<()> {
    let shape = [1, 3, ph, pw];
    let n = 3 * pw * ph;
    let prior_t = || TensorRef::from_array_view(([1usize, prior.len()], prior)).map_err(|e| inference("prior tensor", e));
    match net {
        Net::Split { base, refiner } => {
            let out = base.run(ort::inputs![io::IMAGE => tensor(shape, image)?]).map_err(|e| inference("base graph", e))?;
            let restored = output(&out, io::BASE, n)?;
            if want_base || !want_refined {
                sink(Output::Base, restored);
            }
            if want_refined {
                let out = refiner
                    .run(ort::inputs![
                        io::RESTORED => tensor(shape, restored)?,
                        io::DEGRADED => tensor(shape, image)?,
                        io::PRIOR => prior_t()?,
                    ])
                    .map_err(|e| inference("refiner graph", e))?;
                sink(Output::Refined, output(&out, io::REFINED, n)?);
            }
        }
        Net::Merged(s) => {
            let out = s
                .run(ort::inputs![io::IMAGE => tensor(shape, image)?, io::PRIOR => prior_t()?])
                .map_err(|e| inference("merged graph", e))?;
            if want_base {
                sink(Output::Base, output(&out, io::BASE, n)?);
            }
            if want_refined {
                sink(Output::Refined, output(&out, io::REFINED, n)?);
            }
        }
    }
    Ok(())
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
fn copy_or_convert(input: &FrameRef, out: &mut FrameMut, scratch: &mut Planar) -> Result<()> {
    if !crate::frame::copy_frame(input, out) {
        read_frame(input, scratch);
        write_frame(scratch, out);
    }
    Ok(())
}

/// Creates every session of the bundle on `provider`, checks their I/O against the manifest
/// and runs a small warm-up, which is what proves the provider works.
fn open_sessions(bundle: &Bundle, options: &EngineOptions, provider: Provider) -> Result<Sessions> {
    let settings = ProviderSettings {
        device_id: options.device_id,
        fp16: options.fp16,
        engine_cache_dir: options.engine_cache_dir.clone(),
        threads: options.threads,
    };
    let m = &bundle.manifest;
    let pm = m.pad_multiple as usize;
    let (mw, mh) = (padded(options.max_resolution.0, pm), padded(options.max_resolution.1, pm));
    let dim = m.prior.dim;
    let image_profile = |names: &[&str]| -> [String; 3] {
        let shape = |w: usize, h: usize| {
            names
                .iter()
                .map(|n| if *n == io::PRIOR { format!("{n}:1x{dim}") } else { format!("{n}:1x3x{h}x{w}") })
                .collect::<Vec<_>>()
                .join(",")
        };
        [shape(pm, pm), shape(mw, mh), shape(mw, mh)]
    };
    if provider != Provider::Cpu {
        log::info!("ptgrm: building {provider} sessions (TensorRT engine builds can take minutes; cached in the engine cache dir)");
    }
    let mut prior = None;
    let mut base = None;
    let mut refiner = None;
    let mut merged = None;
    for g in &bundle.graphs {
        let (ins, _) = g.role.required_io();
        let profile = match g.role {
            Role::Prior => {
                let (w, h) = prior_input_size(m.prior.input_size, crate::prior::PRIOR_MAX_SIDE, crate::prior::PRIOR_MAX_SIDE);
                let s = format!("{}:1x3x{h}x{w}", io::IMAGE);
                [format!("{}:1x3x16x16", io::IMAGE), s.clone(), s]
            }
            _ => image_profile(ins),
        };
        let session = build_session(&g.bytes, provider, &settings, Some(&profile))?;
        check_session_io(g.role, &g.spec, &session)?;
        match g.role {
            Role::Prior => prior = Some(session),
            Role::Base => base = Some(session),
            Role::Refiner => refiner = Some(session),
            Role::Merged => merged = Some(session),
        }
    }
    let net = match (base, refiner, merged) {
        (Some(base), Some(refiner), None) => Net::Split { base, refiner },
        (None, None, Some(s)) => Net::Merged(s),
        _ => return Err(Error::model("bundle must hold base+refiner or merged graphs")),
    };
    let mut sessions = Sessions { prior, net };
    warm_up(&mut sessions, m, provider)?;
    Ok(sessions)
}

fn warm_up(s: &mut Sessions, m: &Manifest, provider: Provider) -> Result<()> {
    let side = padded(32, m.pad_multiple as usize);
    let image = vec![0.5 * (m.input_range[0] + m.input_range[1]); 3 * side * side];
    let fail = |e: Error| {
        // A CPU failure is the model's fault; elsewhere it may be the provider's.
        let kind = if provider == Provider::Cpu { ErrorKind::Model } else { ErrorKind::Provider };
        Error::new(kind, format!("{provider}: warm-up run failed: {}", e.message))
    };
    let mut prior = vec![0.0; m.prior.dim as usize];
    if let Some(p) = s.prior.as_mut() {
        let (pw, ph) = prior_input_size(m.prior.input_size, side, side);
        let pimg = vec![0.5; 3 * pw * ph];
        let out = p.run(ort::inputs![io::IMAGE => tensor([1, 3, ph, pw], &pimg).map_err(fail)?]).map_err(|e| fail(inference("prior graph", e)))?;
        let (_, g) = out[io::PRIOR].try_extract_tensor::<f32>().map_err(|e| fail(inference("prior output", e)))?;
        if g.len() != prior.len() {
            return Err(Error::model(format!("prior graph returns {} values, the manifest says prior.dim = {}", g.len(), prior.len())));
        }
        prior.copy_from_slice(g);
    }
    run_net(&mut s.net, &image, side, side, &prior, true, true, |_, _| {}).map_err(|e| if e.kind == ErrorKind::Model { e } else { fail(e) })
}
