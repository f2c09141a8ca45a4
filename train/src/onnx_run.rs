//! Frozen ONNX graphs inside the trainer (prior G, external base F), run through ONNX Runtime
//! with the runtime crate's session setup, so the trainer sees what the engine will compute.

use crate::imagebuf::Image;
use anyhow::{Context, Result, anyhow, bail};
use ort::session::Session;
use ort::value::TensorRef;
use ptgrm::prior::{GridWindow, window_grid};
use ptgrm::providers::{Provider, ProviderSettings, build_session};
use ptgrm_model::import::ffdnet::SIGMA_INPUT;
use std::path::Path;

pub struct OnnxGraph {
    session: Session,
    input: String,
    /// A second input taking each image's noise level (an FFDNet imported with
    /// `--sigma input`): the trainer passes what the degradation drew.
    level_input: Option<String>,
    output: String,
    pub path: String,
}

impl OnnxGraph {
    /// Loads a graph with one image input; `output` names the output to read (or the first).
    pub fn load(path: &Path, output: Option<&str>) -> Result<OnnxGraph> {
        let bytes = std::fs::read(path).with_context(|| format!("reading ONNX graph {}", path.display()))?;
        let settings = ProviderSettings { threads: 1, ..Default::default() };
        let session = build_session(&bytes, Provider::Cpu, &settings, None).map_err(|e| anyhow!("loading {}: {e}", path.display()))?;
        let input = session
            .inputs()
            .iter()
            .map(|i| i.name())
            .find(|n| *n != SIGMA_INPUT)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{} has no image input", path.display()))?;
        let outputs: Vec<String> = session.outputs().iter().map(|o| o.name().to_string()).collect();
        let output = match output {
            Some(want) if outputs.iter().any(|o| o == want) => want.to_string(),
            _ => outputs.first().cloned().ok_or_else(|| anyhow!("{} has no outputs", path.display()))?,
        };
        let level_input = session.inputs().iter().map(|i| i.name()).find(|n| *n == SIGMA_INPUT).map(str::to_string);
        Ok(OnnxGraph { session, input, level_input, output, path: path.display().to_string() })
    }

    /// (input names, output names) as the graph declares them.
    pub fn io_names(&self) -> (Vec<String>, Vec<String>) {
        (
            self.session.inputs().iter().map(|i| i.name().to_string()).collect(),
            self.session.outputs().iter().map(|o| o.name().to_string()).collect(),
        )
    }

    /// Whether the graph must be told each image's noise level.
    pub fn takes_level(&self) -> bool {
        self.level_input.is_some()
    }

    /// Runs on an NCHW batch; returns (shape, values) of the chosen output.
    pub fn run(&mut self, shape: [usize; 4], data: &[f32]) -> Result<(Vec<usize>, Vec<f32>)> {
        self.run_at(shape, data, None)
    }

    /// `run` with the noise level of every image in the batch (sigma, 8-bit units), which a
    /// graph with a level input requires and any other graph ignores.
    pub fn run_at(&mut self, shape: [usize; 4], data: &[f32], level: Option<f32>) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = TensorRef::from_array_view((shape, data)).map_err(|e| anyhow!("{}: input tensor: {e}", self.path))?;
        let outputs = match &self.level_input {
            None => self.session.run(ort::inputs![self.input.as_str() => t]),
            Some(name) => {
                let Some(level) = level else {
                    bail!(
                        "{} takes the noise level (input {name:?}), but the degradation drew none: its chain needs a gaussian_noise stage",
                        self.path
                    );
                };
                let levels = vec![level; shape[0]];
                let l =
                    TensorRef::from_array_view(([shape[0]], levels.as_slice())).map_err(|e| anyhow!("{}: level tensor: {e}", self.path))?;
                self.session.run(ort::inputs![self.input.as_str() => t, name.as_str() => l])
            }
        }
        .map_err(|e| anyhow!("{}: inference: {e}", self.path))?;
        let (s, v) =
            outputs[self.output.as_str()].try_extract_tensor::<f32>().map_err(|e| anyhow!("{}: output {}: {e}", self.path, self.output))?;
        Ok((s.iter().map(|&d| d as usize).collect(), v.to_vec()))
    }
}

/// The prior G: whole (degraded) image -> g, resized exactly as the runtime's engine does.
pub struct PriorModel {
    graph: OnnxGraph,
    pub dim: usize,
    pub input_size: Option<[u32; 2]>,
    /// Cells per side of a per-region prior (0: one vector for the image).
    pub cells: usize,
}

impl PriorModel {
    pub fn load(path: &Path, dim: usize, input_size: Option<[u32; 2]>, cells: usize) -> Result<PriorModel> {
        Ok(PriorModel { graph: OnnxGraph::load(path, Some(ptgrm_bundle::io::PRIOR))?, dim, input_size, cells })
    }

    /// The prior of a crop cut from the image `g` was computed on: `g` itself, or for a
    /// per-region prior the crop's own window of the grid (as the runtime reads a tile's),
    /// flipped and turned as the crop was ([`Image::flip_horizontal`], [`Image::rot90`]).
    pub fn for_crop(&self, g: &[f32], window: GridWindow, flip: bool, turns: usize) -> Vec<f32> {
        if self.cells == 0 {
            return g.to_vec();
        }
        let mut out = Vec::with_capacity(g.len());
        window_grid(g, self.cells, window, &mut out);
        turn_grid(&out, self.cells, flip, turns)
    }

    pub fn compute(&mut self, img: &Image) -> Result<Vec<f32>> {
        let (w, h) = ptgrm::prior::prior_input_size(self.input_size, img.width, img.height);
        let src = ptgrm::frame::Planar { width: img.width, height: img.height, data: img.data.clone() };
        let mut dst = ptgrm::frame::Planar { width: 0, height: 0, data: Vec::new() };
        ptgrm::prior::resize_bilinear(&src, &mut dst, w, h);
        let (shape, g) = self.graph.run([1, 3, h, w], &dst.data)?;
        if g.len() != self.dim {
            bail!("prior graph {} returned shape {shape:?}, expected [1, {}]", self.graph.path, self.dim);
        }
        if g.iter().any(|v| !v.is_finite()) {
            bail!("prior graph {} returned non-finite values", self.graph.path);
        }
        Ok(g)
    }
}

/// A `[D, k, k]` grid flipped left-right (when `flip`) and then turned `turns` quarter turns
/// counter-clockwise: the cell-level twin of [`Image::flip_horizontal`] and [`Image::rot90`].
pub fn turn_grid(grid: &[f32], k: usize, flip: bool, turns: usize) -> Vec<f32> {
    let mut cur = grid.to_vec();
    if flip {
        for row in cur.chunks_exact_mut(k) {
            row.reverse();
        }
    }
    for _ in 0..turns % 4 {
        let mut next = vec![0.0; cur.len()];
        for (src, dst) in cur.chunks_exact(k * k).zip(next.chunks_exact_mut(k * k)) {
            for y in 0..k {
                for x in 0..k {
                    // (y, x) -> (k-1-x, y), as Image::rot90 moves pixels.
                    dst[(k - 1 - x) * k + y] = src[y * k + x];
                }
            }
        }
        cur = next;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_turn_and_flip_as_images_do() {
        // One channel of a 3x3 grid against a 3x3 image's red plane, every flip and turn.
        let k = 3;
        let cells: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let mut img = Image::new(k, k);
        img.data[..9].copy_from_slice(&cells);
        for flip in [false, true] {
            for turns in 0..4 {
                let want = {
                    let i = if flip { img.flip_horizontal() } else { img.clone() };
                    i.rot90(turns).data[..9].to_vec()
                };
                assert_eq!(turn_grid(&cells, k, flip, turns), want, "flip {flip}, turns {turns}");
            }
        }
    }
}
