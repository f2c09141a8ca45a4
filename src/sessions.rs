//! A bundle's ONNX Runtime sessions on one verified execution provider: opening them (with the
//! TensorRT optimisation profile), the warm-up that proves a provider works, running the graphs,
//! and the fallback to the next provider when the first real frame fails.
//!
//! This module is the one owner of "which provider runs the model, and why the others did not":
//! front ends read [`Sessions::provider`] and [`Sessions::log`] through the engine after each
//! frame instead of keeping their own copy.

use crate::bundle::{Bundle, Role, check_session_io};
use crate::engine::EngineOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::prior::{PRIOR_MAX_SIDE, prior_input_size};
use crate::providers::{Provider, ProviderRequest, ProviderSettings, build_session};
use crate::tiling::padded;
use ort::session::Session;
use ort::value::TensorRef;
use ptgrm_bundle::{Manifest, io};

enum Net {
    Split { base: Session, refiner: Session },
    Merged(Session),
}

/// The graphs of one bundle, opened on one provider.
struct Graphs {
    prior: Option<Session>,
    net: Net,
    /// Test seam: these sessions stand in for a provider whose first frame must fail.
    #[cfg(feature = "fault-injection")]
    fails_first_frame: bool,
}

/// Which network output a tile result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Base,
    Refined,
}

pub struct Sessions {
    graphs: Graphs,
    provider: Provider,
    /// Why each provider before the active one was skipped or left, oldest first.
    log: Vec<String>,
    /// Providers not yet tried, for a fallback if the first real frame fails.
    untried: Vec<Provider>,
    /// A real frame has run: from then on a failure is reported, not worked around.
    proven: bool,
}

impl Sessions {
    /// Opens the bundle on the first provider of `options.provider` that builds every session
    /// and passes the warm-up.
    pub fn open(bundle: &Bundle, options: &EngineOptions) -> Result<Sessions> {
        let mut log = Vec::new();
        let candidates = options.provider.candidates();
        for (i, &provider) in candidates.iter().enumerate() {
            match open_graphs(bundle, options, provider) {
                Ok(graphs) => {
                    for reason in &log {
                        log::warn!("{reason}");
                    }
                    log::info!("ptgrm: model {} runs on {provider}", bundle.manifest.name);
                    return Ok(Sessions { graphs, provider, log, untried: candidates[i + 1..].to_vec(), proven: false });
                }
                // A broken model fails the same way everywhere: report it as such at once.
                Err(e) if e.kind == ErrorKind::Model => return Err(e),
                Err(e) if options.provider != ProviderRequest::Auto => return Err(e),
                Err(e) => log.push(format!("{provider} unavailable, falling back: {e}")),
            }
        }
        Err(Error::new(ErrorKind::Provider, format!("no execution provider could run the model:\n  {}", log.join("\n  "))))
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn log(&self) -> &[String] {
        &self.log
    }

    pub fn has_prior_graph(&self) -> bool {
        self.graphs.prior.is_some()
    }

    /// True when the network's outputs come from one graph (a refined output costs nothing extra).
    pub fn is_merged(&self) -> bool {
        matches!(self.graphs.net, Net::Merged(_))
    }

    /// Records that a real frame ran; later failures are errors, not fallbacks.
    pub fn frame_done(&mut self) {
        self.proven = true;
    }

    /// After `error` on a frame: when it was the first real frame and providers remain, reopens
    /// the bundle on the next one that works and returns true (run the frame again); otherwise
    /// false (report `error`).
    pub fn fall_back(&mut self, bundle: &Bundle, options: &EngineOptions, error: &Error) -> Result<bool> {
        if self.proven || error.kind == ErrorKind::InvalidArgument {
            return Ok(false);
        }
        let mut reason = format!("{} failed on the first frame", self.provider);
        while !self.untried.is_empty() {
            let next = self.untried.remove(0);
            match open_graphs(bundle, options, next) {
                Ok(graphs) => {
                    let line = format!("{reason}, falling back to {next}: {}", error.message);
                    log::warn!("{line}");
                    self.log.push(line);
                    self.graphs = graphs;
                    self.provider = next;
                    return Ok(true);
                }
                Err(e) => {
                    let line = format!("{reason}; {next} unavailable: {e}");
                    log::warn!("{line}");
                    self.log.push(line);
                    reason = format!("{next} skipped");
                }
            }
        }
        Ok(false)
    }

    /// Runs the prior graph on one image (NCHW, model range) and hands g (checked: `dim` finite
    /// values) to `take`, straight from ONNX Runtime's buffer.
    pub fn run_prior(&mut self, image: &[f32], w: usize, h: usize, dim: usize, take: impl FnOnce(&[f32])) -> Result<()> {
        #[cfg(feature = "fault-injection")]
        self.injected_failure()?;
        let session = self.graphs.prior.as_mut().ok_or_else(|| Error::model("bundle has no prior graph"))?;
        let outputs = session.run(ort::inputs![io::IMAGE => tensor([1, 3, h, w], image)?]).map_err(|e| inference("prior", e))?;
        let (_, g) = outputs[io::PRIOR].try_extract_tensor::<f32>().map_err(|e| inference("prior output", e))?;
        if g.len() != dim {
            return Err(Error::model(format!("prior graph returned {} values, the manifest says prior.dim = {dim}", g.len())));
        }
        if g.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(ErrorKind::Inference, "prior graph returned NaN or infinity"));
        }
        take(g);
        Ok(())
    }

    #[cfg(feature = "fault-injection")]
    fn injected_failure(&self) -> Result<()> {
        if self.graphs.fails_first_frame && !self.proven {
            return Err(Error::new(ErrorKind::Inference, format!("{}: injected first-frame failure (fault-injection)", self.provider)));
        }
        Ok(())
    }

    /// One padded tile (NCHW, model range, `pw` x `ph`) through the network; hands F's and R's
    /// outputs to `sink` straight from ONNX Runtime's buffers (no intermediate copy; F's output
    /// feeds R directly).
    #[allow(clippy::too_many_arguments)]
    pub fn run_net(
        &mut self,
        image: &[f32],
        pw: usize,
        ph: usize,
        prior: &[f32],
        want_refined: bool,
        want_base: bool,
        sink: impl FnMut(Output, &[f32]),
    ) -> Result<()> {
        #[cfg(feature = "fault-injection")]
        self.injected_failure()?;
        run_net(&mut self.graphs.net, image, pw, ph, prior, want_refined, want_base, sink)
    }
}

fn tensor<'a>(shape: [usize; 4], data: &'a [f32]) -> Result<TensorRef<'a, f32>> {
    let n: usize = shape.iter().product();
    TensorRef::from_array_view((shape, &data[..n])).map_err(|e| inference("input tensor", e))
}

fn inference(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Inference, format!("{what}: {e}"))
}

fn output<'a>(outputs: &'a ort::session::SessionOutputs, name: &str, expect: usize) -> Result<&'a [f32]> {
    let (_, v) = outputs[name].try_extract_tensor::<f32>().map_err(|e| inference(name, e))?;
    if v.len() != expect {
        return Err(Error::model(format!("graph output {name:?} has {} values, expected {expect} (3 x padded H x W)", v.len())));
    }
    Ok(v)
}

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

/// Creates every session of the bundle on `provider`, checks their I/O against the manifest
/// and runs a small warm-up, which is what proves the provider works.
fn open_graphs(bundle: &Bundle, options: &EngineOptions, provider: Provider) -> Result<Graphs> {
    #[cfg(feature = "fault-injection")]
    let fails_first_frame = crate::fault::fails_first_frame(&bundle.dir, provider);
    #[cfg(feature = "fault-injection")]
    let provider_built = if fails_first_frame { Provider::Cpu } else { provider };
    #[cfg(not(feature = "fault-injection"))]
    let provider_built = provider;
    let settings = ProviderSettings {
        device_id: options.device_id,
        fp16: options.fp16,
        engine_cache_dir: options.engine_cache_dir.clone(),
        threads: options.threads,
        spinning: options.spinning,
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
    if provider_built != Provider::Cpu {
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
                let (w, h) = prior_input_size(m.prior.input_size, PRIOR_MAX_SIDE, PRIOR_MAX_SIDE);
                let s = format!("{}:1x3x{h}x{w}", io::IMAGE);
                [format!("{}:1x3x16x16", io::IMAGE), s.clone(), s]
            }
            _ => image_profile(ins),
        };
        let session = build_session(&g.bytes, provider_built, &settings, Some(&profile))?;
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
    let mut graphs = Graphs {
        prior,
        net,
        #[cfg(feature = "fault-injection")]
        fails_first_frame,
    };
    warm_up(&mut graphs, m, provider)?;
    Ok(graphs)
}

fn warm_up(s: &mut Graphs, m: &Manifest, provider: Provider) -> Result<()> {
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
        let out = p
            .run(ort::inputs![io::IMAGE => tensor([1, 3, ph, pw], &pimg).map_err(fail)?])
            .map_err(|e| fail(inference("prior graph", e)))?;
        let (_, g) = out[io::PRIOR].try_extract_tensor::<f32>().map_err(|e| fail(inference("prior output", e)))?;
        if g.len() != prior.len() {
            return Err(Error::model(format!("prior graph returns {} values, the manifest says prior.dim = {}", g.len(), prior.len())));
        }
        prior.copy_from_slice(g);
    }
    run_net(&mut s.net, &image, side, side, &prior, true, true, |_, _| {}).map_err(|e| if e.kind == ErrorKind::Model { e } else { fail(e) })
}
