//! The run's PNG plot: training loss (log scale) on top, validation PSNR (input, base, refined)
//! below, against the step. Drawn directly into an RGB buffer with a 3x5 pixel font, so the
//! trainer needs no font files or plotting dependency.

use anyhow::{Context, Result};
use std::path::Path;

const W: usize = 900;
const H: usize = 640;
const SCALE: usize = 2; // font pixel size

pub struct Series<'a> {
    pub label: &'a str,
    pub colour: [u8; 3],
    pub points: &'a [(f64, f64)],
}

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < W && (y as usize) < H {
            let i = 3 * (y as usize * W + x as usize);
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: [u8; 3]) {
        let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for i in 0..=n {
            let t = i as f64 / n as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            self.set(x.round() as i64, y.round() as i64, c);
            self.set(x.round() as i64, y.round() as i64 + 1, c);
        }
    }

    fn text(&mut self, x: usize, y: usize, s: &str, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            let bits = glyph(ch);
            for row in 0..5 {
                for col in 0..3 {
                    if bits >> (14 - (row * 3 + col)) & 1 == 1 {
                        for dy in 0..SCALE {
                            for dx in 0..SCALE {
                                let px = x + k * 4 * SCALE + col * SCALE + dx;
                                self.set(px as i64, (y + row * SCALE + dy) as i64, c);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// 3x5 glyphs, rows top to bottom, 3 bits per row.
fn glyph(ch: char) -> u16 {
    match ch.to_ascii_uppercase() {
        '0' => 0b111_101_101_101_111,
        '1' => 0b010_110_010_010_111,
        '2' => 0b111_001_111_100_111,
        '3' => 0b111_001_111_001_111,
        '4' => 0b101_101_111_001_001,
        '5' => 0b111_100_111_001_111,
        '6' => 0b111_100_111_101_111,
        '7' => 0b111_001_010_010_010,
        '8' => 0b111_101_111_101_111,
        '9' => 0b111_101_111_001_111,
        '.' => 0b000_000_000_000_010,
        '-' => 0b000_000_111_000_000,
        '(' => 0b010_100_100_100_010,
        ')' => 0b010_001_001_001_010,
        'A' => 0b010_101_111_101_101,
        'B' => 0b110_101_110_101_110,
        'C' => 0b111_100_100_100_111,
        'D' => 0b110_101_101_101_110,
        'E' => 0b111_100_110_100_111,
        'F' => 0b111_100_110_100_100,
        'G' => 0b111_100_101_101_111,
        'H' => 0b101_101_111_101_101,
        'I' => 0b111_010_010_010_111,
        'L' => 0b100_100_100_100_111,
        'M' => 0b101_111_111_101_101,
        'N' => 0b110_101_101_101_101,
        'O' => 0b111_101_101_101_111,
        'P' => 0b111_101_111_100_100,
        'R' => 0b110_101_110_101_101,
        'S' => 0b111_100_111_001_111,
        'T' => 0b111_010_010_010_010,
        'U' => 0b101_101_101_101_111,
        'V' => 0b101_101_101_101_010,
        'W' => 0b101_101_111_111_101,
        'X' => 0b101_101_010_101_101,
        'Y' => 0b101_101_010_010_010,
        _ => 0,
    }
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-2..1e5).contains(&a) {
        format!("{v:.1e}").replace('+', "")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[allow(clippy::too_many_arguments)]
fn panel(cv: &mut Canvas, top: usize, height: usize, title: &str, series: &[Series], log_y: bool, x_range: (f64, f64)) {
    let (left, right) = (90usize, W - 20);
    let (t, b) = (top + 30, top + height - 40);
    let grey = [200, 200, 200];
    let fy = |v: f64| if log_y { v.max(1e-12).log10() } else { v };
    let ys: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| fy(p.1))).filter(|v| v.is_finite()).collect();
    cv.text(left, top + 8, title, [0, 0, 0]);
    let mut lx = left + title.len() * 4 * SCALE + 30;
    for s in series {
        cv.text(lx, top + 8, s.label, s.colour);
        lx += s.label.len() * 4 * SCALE + 20;
    }
    for x in left..=right {
        cv.set(x as i64, b as i64, [0, 0, 0]);
    }
    for y in t..=b {
        cv.set(left as i64, y as i64, [0, 0, 0]);
    }
    if ys.is_empty() {
        return;
    }
    let (mut lo, mut hi) = ys.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, c), &v| (a.min(v), c.max(v)));
    if hi - lo < 1e-9 {
        lo -= 0.5;
        hi += 0.5;
    }
    let pad = 0.05 * (hi - lo);
    let (lo, hi) = (lo - pad, hi + pad);
    let (x0, x1) = (x_range.0, x_range.1.max(x_range.0 + 1.0));
    let px = |x: f64| left as f64 + (x - x0) / (x1 - x0) * (right - left) as f64;
    let py = |v: f64| b as f64 - (v - lo) / (hi - lo) * (b - t) as f64;
    for i in 0..=4 {
        let v = lo + (hi - lo) * i as f64 / 4.0;
        let y = py(v);
        for x in (left + 1..right).step_by(4) {
            cv.set(x as i64, y as i64, grey);
        }
        let label = if log_y { fmt_num(10f64.powf(v)) } else { fmt_num(v) };
        cv.text(5, y as usize - 5, &label, [0, 0, 0]);
        let xv = x0 + (x1 - x0) * i as f64 / 4.0;
        cv.text(px(xv) as usize - 10, b + 8, &format!("{:.0}", xv), [0, 0, 0]);
    }
    for s in series {
        let pts: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (px(x), py(fy(y)))).filter(|p| p.1.is_finite()).collect();
        if pts.len() == 1 {
            for d in -2..=2 {
                cv.line((pts[0].0 - 2.0, pts[0].1 + d as f64), (pts[0].0 + 2.0, pts[0].1 + d as f64), s.colour);
            }
        }
        for w in pts.windows(2) {
            cv.line(w[0], w[1], s.colour);
        }
    }
}

/// Writes the two-panel plot.
pub fn write_plot(path: &Path, loss: &[(f64, f64)], val: &[Series], last_step: f64) -> Result<()> {
    let mut cv = Canvas { px: vec![255; W * H * 3] };
    let x_range = (0.0, last_step.max(1.0));
    panel(&mut cv, 0, H / 2, "TRAIN LOSS", &[Series { label: "LOSS", colour: [40, 40, 40], points: loss }], true, x_range);
    panel(&mut cv, H / 2, H / 2, "VAL PSNR (DB)", val, false, x_range);
    cv.text(W / 2 - 20, H - 14, "STEP", [0, 0, 0]);
    image::save_buffer(path, &cv.px, W as u32, H as u32, image::ColorType::Rgb8).with_context(|| format!("writing plot {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_draws_each_series_in_its_colour() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        let loss: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, 0.1 / (1.0 + i as f64))).collect();
        let refined = [(10.0, 20.0), (20.0, 22.0), (40.0, 23.0)];
        write_plot(&path, &loss, &[Series { label: "REFINED", colour: [220, 0, 0], points: &refined }], 49.0).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (W as u32, H as u32));
        let red = img.pixels().filter(|p| p.0 == [220, 0, 0]).count();
        let dark = img.pixels().filter(|p| p.0 == [40, 40, 40]).count();
        assert!(red > 100 && dark > 100, "red {red} dark {dark}");
    }
}
