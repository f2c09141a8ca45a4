//! `train grid`: a before/after image grid for reports. Every row lists images of one scene
//! (e.g. input, base, refined, clean); the same window is cut from each and the windows are
//! laid out left to right, rows top to bottom, on a white background with small gaps.

use crate::imagebuf::{Image, Photo};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

const GAP: usize = 4;

pub struct GridOptions<'a> {
    /// Each row: its image files, left to right.
    pub rows: &'a [Vec<PathBuf>],
    /// Side of the square window cut from each image.
    pub crop: usize,
    /// Window centre as fractions of width and height (0.5, 0.5 = the middle).
    pub centre: (f64, f64),
    pub out: &'a Path,
}

pub fn grid(o: &GridOptions) -> Result<()> {
    if o.rows.is_empty() || o.rows.iter().any(|r| r.is_empty()) {
        bail!("every row needs at least one image");
    }
    let cols = o.rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let c = o.crop;
    let mut out = Image::filled(cols * c + (cols + 1) * GAP, o.rows.len() * c + (o.rows.len() + 1) * GAP, [1.0, 1.0, 1.0]);
    for (ri, row) in o.rows.iter().enumerate() {
        let mut size = None;
        for (ci, path) in row.iter().enumerate() {
            let img = Photo::load(path, 0)?;
            match size {
                None => size = Some((img.width, img.height)),
                Some(s) if s != (img.width, img.height) => {
                    bail!("{} is {}x{}, the row's first image {}x{}", path.display(), img.width, img.height, s.0, s.1)
                }
                Some(_) => {}
            }
            if img.width < c || img.height < c {
                bail!("{} ({}x{}) is smaller than the {c}-pixel window", path.display(), img.width, img.height);
            }
            let pick = |len: usize, f: f64| ((len as f64 * f).round() as usize).saturating_sub(c / 2).min(len - c);
            let window = img.region(pick(img.width, o.centre.0), pick(img.height, o.centre.1), c, c);
            let (x0, y0) = (GAP + ci * (c + GAP), GAP + ri * (c + GAP));
            for ch in 0..3 {
                for y in 0..c {
                    for x in 0..c {
                        *out.at_mut(ch, y0 + y, x0 + x) = window.at(ch, y, x);
                    }
                }
            }
        }
    }
    out.save_png(o.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_order_and_windows_come_from_the_same_place() {
        let dir = tempfile::tempdir().unwrap();
        let save = |name: &str, v: u8| {
            let p = dir.path().join(name);
            let mut rgb = vec![v; 40 * 30 * 3];
            rgb[3 * (15 * 40 + 20)] = 255; // red marker at the middle (x 20, y 15)
            image::save_buffer(&p, &rgb, 40, 30, image::ColorType::Rgb8).unwrap();
            p
        };
        let rows = vec![vec![save("a.png", 10), save("b.png", 20)], vec![save("c.png", 30)]];
        let out = dir.path().join("grid.png");
        grid(&GridOptions { rows: &rows, crop: 10, centre: (0.5, 0.5), out: &out }).unwrap();
        let g = Photo::load(&out, 0).unwrap();
        assert_eq!((g.width, g.height), (2 * 10 + 3 * GAP, 2 * 10 + 3 * GAP));
        let px = |x: usize, y: usize| &g.rgb[3 * (y * g.width + x)..3 * (y * g.width + x) + 3];
        assert_eq!(px(GAP + 1, GAP + 1), [10, 10, 10]);
        assert_eq!(px(2 * GAP + 10 + 1, GAP + 1), [20, 20, 20]);
        assert_eq!(px(GAP + 1, 2 * GAP + 10 + 1), [30, 30, 30]);
        assert_eq!(px(GAP + 5, GAP + 5), [255, 10, 10]); // the marker sits at the window's centre
        assert_eq!(px(2 * GAP + 10 + 1, 2 * GAP + 10 + 1), [255, 255, 255]); // empty cell
        let bad = vec![vec![save("d.png", 1), dir.path().join("missing.png")]];
        assert!(grid(&GridOptions { rows: &bad, crop: 10, centre: (0.5, 0.5), out: &out }).is_err());
    }
}
