//! Planar float RGB images (CHW, values nominally in [0, 1]) and the geometric operations the
//! data pipeline needs. Planar layout matches the NCHW tensors the model takes.

use anyhow::{Context, Result};
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    /// 3 planes of width*height values: R, G, B.
    pub data: Vec<f32>,
}

impl Image {
    pub fn new(width: usize, height: usize) -> Image {
        Image { width, height, data: vec![0.0; 3 * width * height] }
    }

    pub fn filled(width: usize, height: usize, rgb: [f32; 3]) -> Image {
        let mut img = Image::new(width, height);
        for c in 0..3 {
            img.plane_mut(c).fill(rgb[c]);
        }
        img
    }

    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.width * self.height;
        &self.data[c * n..(c + 1) * n]
    }

    pub fn plane_mut(&mut self, c: usize) -> &mut [f32] {
        let n = self.width * self.height;
        &mut self.data[c * n..(c + 1) * n]
    }

    #[inline]
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }

    #[inline]
    pub fn at_mut(&mut self, c: usize, y: usize, x: usize) -> &mut f32 {
        &mut self.data[(c * self.height + y) * self.width + x]
    }

    pub fn from_rgb8(width: usize, height: usize, rgb: &[u8]) -> Image {
        let mut img = Image::new(width, height);
        let n = width * height;
        for i in 0..n {
            for c in 0..3 {
                img.data[c * n + i] = rgb[3 * i + c] as f32 / 255.0;
            }
        }
        img
    }

    pub fn to_rgb8(&self) -> Vec<u8> {
        let n = self.width * self.height;
        let mut out = vec![0u8; 3 * n];
        for i in 0..n {
            for c in 0..3 {
                out[3 * i + c] = (self.data[c * n + i].clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
        out
    }

    pub fn save_png(&self, path: &Path) -> Result<()> {
        image::save_buffer(path, &self.to_rgb8(), self.width as u32, self.height as u32, image::ColorType::Rgb8)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn crop(&self, x0: usize, y0: usize, w: usize, h: usize) -> Image {
        assert!(x0 + w <= self.width && y0 + h <= self.height, "crop outside the image");
        let mut out = Image::new(w, h);
        for c in 0..3 {
            for y in 0..h {
                let src = (c * self.height + y0 + y) * self.width + x0;
                let dst = (c * h + y) * w;
                out.data[dst..dst + w].copy_from_slice(&self.data[src..src + w]);
            }
        }
        out
    }

    pub fn flip_horizontal(&self) -> Image {
        let mut out = self.clone();
        for row in out.data.chunks_mut(self.width) {
            row.reverse();
        }
        out
    }

    /// Rotates by 90 degrees counter-clockwise `quarter_turns` times.
    pub fn rot90(&self, quarter_turns: usize) -> Image {
        let mut img = self.clone();
        for _ in 0..quarter_turns % 4 {
            let (w, h) = (img.width, img.height);
            let mut out = Image::new(h, w);
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        // (x, y) -> (y, w-1-x)
                        *out.at_mut(c, w - 1 - x, y) = img.at(c, y, x);
                    }
                }
            }
            img = out;
        }
        img
    }

    pub fn mean(&self) -> f64 {
        self.data.iter().map(|&v| v as f64).sum::<f64>() / self.data.len() as f64
    }

    pub fn clamp01(&mut self) {
        for v in &mut self.data {
            *v = v.clamp(0.0, 1.0);
        }
    }
}

/// A decoded photo kept in memory as 8-bit RGB (a quarter of the float size).
#[derive(Clone, Debug)]
pub struct Photo {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Photo {
    /// Decodes any format the `image` crate reads (grey and alpha become RGB); when the longer
    /// side exceeds `max_side` (> 0) the photo is downscaled with a triangle filter, which also
    /// averages away sensor noise and JPEG artefacts of large originals.
    pub fn load(path: &Path, max_side: usize) -> Result<Photo> {
        let img = image::ImageReader::open(path)
            .with_context(|| format!("opening {}", path.display()))?
            .with_guessed_format()
            .with_context(|| format!("reading {}", path.display()))?
            .decode()
            .with_context(|| format!("decoding {}", path.display()))?;
        let mut rgb = img.to_rgb8();
        let long = rgb.width().max(rgb.height()) as usize;
        if max_side > 0 && long > max_side {
            rgb = scaled(&rgb, max_side as f64 / long as f64);
        }
        let (w, h) = rgb.dimensions();
        Ok(Photo { width: w as usize, height: h as usize, rgb: rgb.into_raw() })
    }

    /// The photo scaled by `factor` (in (0, 1)) with the triangle filter of [`Photo::load`].
    pub fn downscaled(&self, factor: f64) -> Photo {
        let src =
            image::RgbImage::from_raw(self.width as u32, self.height as u32, self.rgb.clone()).expect("a photo holds width*height*3 bytes");
        let out = scaled(&src, factor);
        let (w, h) = out.dimensions();
        Photo { width: w as usize, height: h as usize, rgb: out.into_raw() }
    }

    pub fn region(&self, x0: usize, y0: usize, w: usize, h: usize) -> Image {
        assert!(x0 + w <= self.width && y0 + h <= self.height, "region outside the photo");
        let mut out = Image::new(w, h);
        let n = w * h;
        for y in 0..h {
            for x in 0..w {
                let s = 3 * ((y0 + y) * self.width + x0 + x);
                for c in 0..3 {
                    out.data[c * n + y * w + x] = self.rgb[s + c] as f32 / 255.0;
                }
            }
        }
        out
    }

    pub fn to_image(&self) -> Image {
        Image::from_rgb8(self.width, self.height, &self.rgb)
    }
}

/// `rgb` scaled by `factor` with the triangle filter (sides rounded, at least 1 pixel): how
/// photos are brought to `max_side` and to `data.extra_scales`.
fn scaled(rgb: &image::RgbImage, factor: f64) -> image::RgbImage {
    let nw = ((rgb.width() as f64 * factor).round() as u32).max(1);
    let nh = ((rgb.height() as f64 * factor).round() as u32).max(1);
    image::imageops::resize(rgb, nw, nh, image::imageops::FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Image {
        let mut img = Image::new(w, h);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = i as f32;
        }
        img
    }

    #[test]
    fn four_quarter_turns_and_two_flips_are_identity() {
        let img = ramp(5, 3);
        assert_eq!(img.rot90(4), img);
        let r = img.rot90(1);
        assert_eq!((r.width, r.height), (3, 5));
        assert_eq!(r.rot90(3), img);
        assert_eq!(img.flip_horizontal().flip_horizontal(), img);
        assert_eq!(img.flip_horizontal().at(0, 0, 0), img.at(0, 0, 4));
    }

    #[test]
    fn crop_takes_the_named_window() {
        let img = ramp(6, 4);
        let c = img.crop(2, 1, 3, 2);
        assert_eq!(c.at(1, 0, 0), img.at(1, 1, 2));
        assert_eq!(c.at(2, 1, 2), img.at(2, 2, 4));
    }

    #[test]
    fn rgb8_round_trip() {
        let rgb: Vec<u8> = (0..2 * 3 * 3).map(|i| (i * 13) as u8).collect();
        assert_eq!(Image::from_rgb8(3, 2, &rgb).to_rgb8(), rgb);
    }
}
