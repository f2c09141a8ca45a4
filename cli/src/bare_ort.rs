//! The baseline `ptgrm bench` compares the engine with: the bundle's graphs in plain ort
//! sessions, fed ready-made NCHW tensors of the size the engine gives them (the frame padded to
//! the pad multiple), with no pixel conversion, padding, blending or output copies. The ratio
//! engine/bare is then the cost of everything the engine adds around ONNX Runtime.

use ort::ep;
use ort::session::{Session, builder::GraphOptimizationLevel};
use ort::value::{Tensor, TensorRef};
use ptgrm::tiling::padded;
use ptgrm::{Error, ErrorKind, Manifest, Provider, Result};
use ptgrm_bundle::io;
use std::path::Path;

enum Net {
    Split { base: Session, refiner: Session },
    Merged(Session),
}

pub struct BareModel {
    prior: Option<Session>,
    net: Net,
    image: Tensor<f32>,
    prior_image: Tensor<f32>,
    prior_value: Vec<f32>,
    prior_interval: u64,
    frames: u64,
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Inference, format!("bare ort {what}: {e}"))
}

/// One session on `provider` with ONNX Runtime's defaults plus the engine's thread count and
/// optimisation level.
fn session(bytes: &[u8], provider: Provider, threads: usize) -> Result<Session> {
    let env = ptgrm::ortlib::environment(None)?;
    let mut builder = Session::builder(env)
        .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::Level3).map_err(Into::into))
        .map_err(|e| failed("session options", e))?;
    if threads > 0 {
        builder = builder.with_intra_threads(threads).map_err(|e| failed("intra-op threads", e))?;
    }
    let dispatch = match provider {
        Provider::Cpu => None,
        Provider::Cuda => Some(ep::CUDA::default().build()),
        Provider::TensorRt => Some(ep::TensorRT::default().build()),
    };
    if let Some(d) = dispatch {
        builder = builder.with_execution_providers([d.error_on_failure()]).map_err(|e| failed("execution provider", e))?;
    }
    builder.commit_from_memory(bytes).map_err(|e| failed("session", e))
}

impl BareModel {
    /// `pixel(x, y, c)` gives the 0..=255 test pattern the engine's frame holds, so both sides
    /// see the same image content.
    pub fn load(
        dir: &Path,
        provider: Provider,
        threads: usize,
        frame: (usize, usize),
        prior_interval: u32,
        pixel: impl Fn(usize, usize, usize) -> u8,
    ) -> Result<BareModel> {
        let m = Manifest::read(dir)?;
        let open = |role: &str, g: &ptgrm_bundle::GraphFile| -> Result<Session> {
            session(&Manifest::read_graph(dir, role, g)?, provider, threads)
        };
        let prior = m.graphs.prior.as_ref().map(|g| open("prior", g)).transpose()?;
        let net = match (&m.graphs.base, &m.graphs.refiner, &m.graphs.merged) {
            (Some(b), Some(r), None) => Net::Split { base: open("base", b)?, refiner: open("refiner", r)? },
            (None, None, Some(g)) => Net::Merged(open("merged", g)?),
            _ => return Err(Error::model("bundle must hold base+refiner or merged graphs")),
        };
        let pm = m.pad_multiple as usize;
        let (w, h) = frame;
        let image = pattern_tensor(&m, padded(w, pm), padded(h, pm), |x, y, c| pixel(x.min(w - 1), y.min(h - 1), c))?;
        let (pw, ph) = ptgrm::prior::prior_input_size(m.prior.input_size, w, h);
        // The prior graph sees the whole frame at (pw, ph): sample the pattern at that scale.
        let prior_image = pattern_tensor(&m, pw, ph, |x, y, c| pixel(x * w / pw, y * h / ph, c))?;
        Ok(BareModel {
            prior,
            net,
            image,
            prior_image,
            prior_value: vec![0.0; m.prior.dim as usize],
            prior_interval: prior_interval.max(1) as u64,
            frames: 0,
        })
    }

    /// One frame: the prior when due, then F and R (or the merged graph).
    pub fn run_frame(&mut self) -> Result<()> {
        if self.frames.is_multiple_of(self.prior_interval)
            && let Some(p) = self.prior.as_mut()
        {
            let out = p.run(ort::inputs![io::IMAGE => &self.prior_image]).map_err(|e| failed("prior graph", e))?;
            let (_, g) = out[io::PRIOR].try_extract_tensor::<f32>().map_err(|e| failed("prior output", e))?;
            if g.len() != self.prior_value.len() {
                return Err(Error::model(format!("prior graph returned {} values, expected {}", g.len(), self.prior_value.len())));
            }
            self.prior_value.copy_from_slice(g);
        }
        self.frames += 1;
        let prior =
            TensorRef::from_array_view(([1usize, self.prior_value.len()], &self.prior_value[..])).map_err(|e| failed("prior tensor", e))?;
        let refined = match &mut self.net {
            Net::Split { base, refiner } => {
                let restored = base
                    .run(ort::inputs![io::IMAGE => &self.image])
                    .map_err(|e| failed("base graph", e))?
                    .remove(io::BASE)
                    .ok_or_else(|| Error::model("base graph has no output named base"))?;
                let mut out = refiner
                    .run(ort::inputs![io::RESTORED => restored, io::DEGRADED => &self.image, io::PRIOR => prior])
                    .map_err(|e| failed("refiner graph", e))?;
                out.remove(io::REFINED)
            }
            Net::Merged(s) => {
                let mut out = s.run(ort::inputs![io::IMAGE => &self.image, io::PRIOR => prior]).map_err(|e| failed("merged graph", e))?;
                out.remove(io::REFINED)
            }
        };
        let refined = refined.ok_or_else(|| Error::model("graph has no output named refined"))?;
        let (_, values) = refined.try_extract_tensor::<f32>().map_err(|e| failed("refined output", e))?;
        std::hint::black_box(values.first());
        Ok(())
    }
}

/// An NCHW [1, 3, h, w] tensor of the pattern mapped into the model's input range.
fn pattern_tensor(m: &Manifest, w: usize, h: usize, pixel: impl Fn(usize, usize, usize) -> u8) -> Result<Tensor<f32>> {
    let [lo, hi] = m.input_range;
    let mut data = Vec::with_capacity(3 * w * h);
    for c in 0..3 {
        for y in 0..h {
            data.extend((0..w).map(|x| lo + (hi - lo) * pixel(x, y, c) as f32 / 255.0));
        }
    }
    Tensor::from_array(([1usize, 3, h, w], data)).map_err(|e| failed("input tensor", e))
}
