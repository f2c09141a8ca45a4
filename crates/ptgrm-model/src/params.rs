//! Parameter values and their deterministic initialization.
//!
//! A parameter's initial value depends only on (seed, name, shape, init), never on the order
//! in which a forward asks for it, so the trainer's burn backend (calling [`init_value`]
//! lazily inside `Ops::param`) and the ONNX exporter start from identical weights.

use crate::ops::Init;
use std::collections::BTreeMap;

/// A named parameter's shape and row-major f32 data.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamValue {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl ParamValue {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// name -> value; ordered so dumps and checksums are stable.
pub type ParamMap = BTreeMap<String, ParamValue>;

/// SplitMix64: tiny, fast, and good enough for weight initialization.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    fn next_unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The initial value of parameter `name` for `seed`.
pub fn init_value(name: &str, shape: &[usize], init: Init, seed: u64) -> ParamValue {
    let n: usize = shape.iter().product();
    let data = match (init, init.bound()) {
        (Init::Const(v), _) => vec![v; n],
        (Init::Repeat { bound, repeat }, _) => {
            // Output channels are the first axis: draw one block per group, copy it `repeat` times.
            let (channels, repeat) = (shape.first().copied().unwrap_or(1).max(1), repeat.max(1));
            let block = n / channels;
            let mut rng = SplitMix64(seed ^ fnv1a(name));
            let drawn: Vec<f32> = (0..n / repeat).map(|_| (2.0 * rng.next_unit() - 1.0) * bound).collect();
            drawn.chunks(block.max(1)).flat_map(|b| std::iter::repeat_n(b, repeat).flatten().copied()).collect()
        }
        (_, Some(bound)) => {
            let mut rng = SplitMix64(seed ^ fnv1a(name));
            (0..n).map(|_| (2.0 * rng.next_unit() - 1.0) * bound).collect()
        }
        (_, None) => unreachable!("only Init::Const has no bound"),
    };
    ParamValue { shape: shape.to_vec(), data }
}

/// Total number of scalars in a parameter map.
pub fn count(params: &ParamMap) -> u64 {
    params.values().map(|p| p.numel() as u64).sum()
}

/// Parameter count of the names starting with `prefix` (e.g. "refiner.").
pub fn count_prefix(params: &ParamMap, prefix: &str) -> u64 {
    params.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, p)| p.numel() as u64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_depends_on_name_and_seed_only() {
        let a = init_value("a.weight", &[4, 3], Init::kaiming_uniform(3), 7);
        let b = init_value("a.weight", &[4, 3], Init::kaiming_uniform(3), 7);
        let c = init_value("b.weight", &[4, 3], Init::kaiming_uniform(3), 7);
        let d = init_value("a.weight", &[4, 3], Init::kaiming_uniform(3), 8);
        assert_eq!(a, b);
        assert_ne!(a.data, c.data);
        assert_ne!(a.data, d.data);
        let bound = Init::kaiming_uniform(3).bound().unwrap();
        assert!((bound - 1.0 / 3f32.sqrt()).abs() < 1e-6, "torch default bound is 1/sqrt(fan_in)");
        assert!(a.data.iter().all(|v| v.abs() <= bound));
        assert_eq!(init_value("x", &[2, 2], Init::Const(1.5), 0).data, vec![1.5; 4]);
        // ICNR: output channels 0-3 and 4-7 are two drawn blocks, each copied four times.
        let w = init_value("w", &[8, 2, 1, 1], Init::Repeat { bound: 0.5, repeat: 4 }, 3).data;
        assert_eq!(w.len(), 16);
        for c in 0..8 {
            assert_eq!(w[c * 2..c * 2 + 2], w[(c / 4) * 8..(c / 4) * 8 + 2], "channel {c}");
        }
        assert_ne!(w[0..2], w[8..10]);
        assert!(w.iter().all(|v| v.abs() < 0.5));
    }
}
