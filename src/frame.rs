//! Frame I/O: caller pixel layouts <-> the engine's planar RGB f32 working buffer.
//!
//! Every conversion is a single pass over the frame. YUV formats are converted natively (no
//! intermediate packed RGB) so the GStreamer element never needs a videoconvert in front.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Rgb8,
    Bgr8,
    Rgba8,
    Bgra8,
    Rgbx8,
    Bgrx8,
    /// Luma only: read as luma-replicated RGB, written as Rec.601 luma of the result.
    Gray8,
    /// Three f32 planes R, G, B in the model's input range; plane c starts at c*stride*height bytes.
    RgbF32Planar,
    /// Planar 4:2:0: Y, U, V planes.
    I420,
    /// Semi-planar 4:2:0: Y plane, interleaved UV plane.
    Nv12,
    /// Packed 4:2:2: Y0 U Y1 V.
    Yuy2,
}

/// YUV <-> RGB matrix and range, used only by the YUV formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct YuvColor {
    pub matrix: YuvMatrix,
    pub full_range: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YuvMatrix {
    Bt601,
    #[default]
    Bt709,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 11] = [
        PixelFormat::Rgb8,
        PixelFormat::Bgr8,
        PixelFormat::Rgba8,
        PixelFormat::Bgra8,
        PixelFormat::Rgbx8,
        PixelFormat::Bgrx8,
        PixelFormat::Gray8,
        PixelFormat::RgbF32Planar,
        PixelFormat::I420,
        PixelFormat::Nv12,
        PixelFormat::Yuy2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Rgb8 => "RGB",
            PixelFormat::Bgr8 => "BGR",
            PixelFormat::Rgba8 => "RGBA",
            PixelFormat::Bgra8 => "BGRA",
            PixelFormat::Rgbx8 => "RGBx",
            PixelFormat::Bgrx8 => "BGRx",
            PixelFormat::Gray8 => "GRAY8",
            PixelFormat::RgbF32Planar => "RGBF32P",
            PixelFormat::I420 => "I420",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Yuy2 => "YUY2",
        }
    }

    pub fn planes(self) -> usize {
        match self {
            PixelFormat::I420 => 3,
            PixelFormat::Nv12 => 2,
            _ => 1,
        }
    }

    /// (bytes per pixel, byte offsets of R, G, B) for the packed 8-bit RGB layouts.
    fn packed_rgb(self) -> Option<(usize, [usize; 3])> {
        Some(match self {
            PixelFormat::Rgb8 => (3, [0, 1, 2]),
            PixelFormat::Bgr8 => (3, [2, 1, 0]),
            PixelFormat::Rgba8 | PixelFormat::Rgbx8 => (4, [0, 1, 2]),
            PixelFormat::Bgra8 | PixelFormat::Bgrx8 => (4, [2, 1, 0]),
            _ => return None,
        })
    }

    /// Minimum row length in bytes and row count of `plane` for a width x height frame.
    pub fn plane_extent(self, plane: usize, width: usize, height: usize) -> (usize, usize) {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        match (self, plane) {
            (PixelFormat::Gray8, _) => (width, height),
            (PixelFormat::RgbF32Planar, _) => (width * 4, height * 3),
            (PixelFormat::I420, 0) | (PixelFormat::Nv12, 0) => (width, height),
            (PixelFormat::I420, _) => (cw, ch),
            (PixelFormat::Nv12, _) => (cw * 2, ch),
            (PixelFormat::Yuy2, _) => (cw * 4, height),
            (f, _) => (width * f.packed_rgb().map_or(0, |p| p.0), height),
        }
    }
}

impl std::str::FromStr for PixelFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PixelFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::invalid(format!("unknown pixel format {s:?}")))
    }
}

/// Geometry shared by [`FrameRef`] and [`FrameMut`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameLayout {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    /// Row stride in bytes of each plane (unused entries ignored).
    pub strides: [usize; 3],
    pub color: YuvColor,
}

impl FrameLayout {
    pub fn new(format: PixelFormat, width: usize, height: usize, strides: [usize; 3]) -> Self {
        FrameLayout { format, width, height, strides, color: YuvColor::default() }
    }

    /// A tightly packed layout (stride = minimum row length).
    pub fn packed(format: PixelFormat, width: usize, height: usize) -> Self {
        let mut strides = [0; 3];
        for (p, s) in strides.iter_mut().enumerate().take(format.planes()) {
            *s = format.plane_extent(p, width, height).0;
        }
        FrameLayout::new(format, width, height, strides)
    }

    /// Bytes plane `p` must hold.
    pub fn plane_len(&self, p: usize) -> usize {
        let (row, rows) = self.format.plane_extent(p, self.width, self.height);
        if rows == 0 { 0 } else { self.strides[p] * (rows - 1) + row }
    }

    /// Total bytes of a buffer holding all planes back to back with these strides.
    pub fn contiguous_len(&self) -> usize {
        (0..self.format.planes()).map(|p| self.strides[p] * self.format.plane_extent(p, self.width, self.height).1).sum()
    }

    fn check(&self, lens: &[usize]) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::invalid(format!("frame size {}x{} is empty", self.width, self.height)));
        }
        const MAX_SIDE: usize = 1 << 15;
        if self.width > MAX_SIDE || self.height > MAX_SIDE {
            return Err(Error::invalid(format!("frame size {}x{} exceeds {MAX_SIDE} per side", self.width, self.height)));
        }
        if lens.len() < self.format.planes() {
            return Err(Error::invalid(format!("{} needs {} planes, got {}", self.format.name(), self.format.planes(), lens.len())));
        }
        for p in 0..self.format.planes() {
            let (row, _) = self.format.plane_extent(p, self.width, self.height);
            if self.strides[p] < row {
                return Err(Error::invalid(format!(
                    "{} plane {p} stride {} is less than the row length {row} for width {}",
                    self.format.name(),
                    self.strides[p],
                    self.width
                )));
            }
            if lens[p] < self.plane_len(p) {
                return Err(Error::invalid(format!(
                    "{} plane {p} holds {} bytes, {}x{} with stride {} needs {}",
                    self.format.name(),
                    lens[p],
                    self.width,
                    self.height,
                    self.strides[p],
                    self.plane_len(p)
                )));
            }
        }
        Ok(())
    }
}

/// A borrowed input frame.
pub struct FrameRef<'a> {
    pub layout: FrameLayout,
    planes: [&'a [u8]; 3],
}

/// A borrowed output frame.
pub struct FrameMut<'a> {
    pub layout: FrameLayout,
    planes: [&'a mut [u8]; 3],
}

impl<'a> FrameRef<'a> {
    /// Validates sizes and strides against the plane slices.
    pub fn new(layout: FrameLayout, planes: &[&'a [u8]]) -> Result<Self> {
        // Fixed-size arrays: wrapping a frame must not allocate (it happens once per frame).
        let n = planes.len().min(3);
        let mut ps: [&[u8]; 3] = [&[]; 3];
        ps[..n].copy_from_slice(&planes[..n]);
        let mut lens = [0usize; 3];
        for (l, p) in lens.iter_mut().zip(&ps) {
            *l = p.len();
        }
        layout.check(&lens[..n])?;
        Ok(FrameRef { layout, planes: ps })
    }

    /// One buffer holding all planes back to back (as `contiguous_len`).
    pub fn contiguous(layout: FrameLayout, data: &'a [u8]) -> Result<Self> {
        let mut planes = Vec::with_capacity(3);
        let mut rest = data;
        for p in 0..layout.format.planes() {
            let rows = layout.format.plane_extent(p, layout.width, layout.height).1;
            let take = (layout.strides[p] * rows).min(rest.len());
            let (a, b) = rest.split_at(take);
            planes.push(a);
            rest = b;
        }
        FrameRef::new(layout, &planes)
    }
}

impl<'a> FrameMut<'a> {
    /// `planes`: a Vec or, allocation-free, an array of plane slices.
    pub fn new(layout: FrameLayout, planes: impl IntoIterator<Item = &'a mut [u8]>) -> Result<Self> {
        let mut ps: [&'a mut [u8]; 3] = [&mut [], &mut [], &mut []];
        let mut n = 0;
        for p in planes.into_iter().take(3) {
            ps[n] = p;
            n += 1;
        }
        let mut lens = [0usize; 3];
        for (l, p) in lens.iter_mut().zip(&ps) {
            *l = p.len();
        }
        layout.check(&lens[..n])?;
        Ok(FrameMut { layout, planes: ps })
    }

    pub fn contiguous(layout: FrameLayout, data: &'a mut [u8]) -> Result<Self> {
        let mut planes = Vec::with_capacity(3);
        let mut rest = data;
        for p in 0..layout.format.planes() {
            let rows = layout.format.plane_extent(p, layout.width, layout.height).1;
            let take = (layout.strides[p] * rows).min(rest.len());
            let (a, b) = std::mem::take(&mut rest).split_at_mut(take);
            planes.push(a);
            rest = b;
        }
        FrameMut::new(layout, planes)
    }
}

/// YUV coefficients (Kr, Kb) and the integer range offsets.
struct Yuv {
    kr: f32,
    kb: f32,
    y_off: f32,
    y_scale: f32,
    c_scale: f32,
}

impl Yuv {
    fn new(c: YuvColor) -> Self {
        let (kr, kb) = match c.matrix {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
        };
        if c.full_range {
            Yuv { kr, kb, y_off: 0.0, y_scale: 255.0, c_scale: 255.0 }
        } else {
            Yuv { kr, kb, y_off: 16.0, y_scale: 219.0, c_scale: 224.0 }
        }
    }
    /// 8-bit Y, U, V -> RGB in [0,1].
    #[inline]
    fn to_rgb(&self, y: u8, u: u8, v: u8) -> [f32; 3] {
        let yf = (y as f32 - self.y_off) / self.y_scale;
        let pb = (u as f32 - 128.0) / self.c_scale;
        let pr = (v as f32 - 128.0) / self.c_scale;
        let kg = 1.0 - self.kr - self.kb;
        let r = yf + 2.0 * (1.0 - self.kr) * pr;
        let b = yf + 2.0 * (1.0 - self.kb) * pb;
        let g = (yf - self.kr * r - self.kb * b) / kg;
        [r, g, b]
    }
    #[inline]
    fn luma(&self, rgb: [f32; 3]) -> f32 {
        self.kr * rgb[0] + (1.0 - self.kr - self.kb) * rgb[1] + self.kb * rgb[2]
    }
    #[inline]
    fn y8(&self, luma: f32) -> u8 {
        to_u8(self.y_off + luma * self.y_scale)
    }
    /// Chroma bytes from the mean RGB of the pixels sharing them.
    #[inline]
    fn uv8(&self, rgb: [f32; 3]) -> (u8, u8) {
        let y = self.luma(rgb);
        let pb = (rgb[2] - y) / (2.0 * (1.0 - self.kb));
        let pr = (rgb[0] - y) / (2.0 * (1.0 - self.kr));
        (to_u8(128.0 + pb * self.c_scale), to_u8(128.0 + pr * self.c_scale))
    }
}

#[inline]
fn to_u8(v: f32) -> u8 {
    // `as` saturates and maps NaN to 0; +0.5 rounds half up for non-negative values.
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// Planar RGB f32 image owned by the engine: `data[c * w * h + y * w + x]`, values in [0,1].
#[derive(Default, Clone)]
pub struct Planar {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Planar {
    /// Resizes without shrinking capacity (no allocation once warmed up at the largest size).
    pub fn reshape(&mut self, width: usize, height: usize) {
        self.width = width;
        self.height = height;
        self.data.resize(3 * width * height, 0.0);
    }
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.width * self.height;
        &self.data[c * n..(c + 1) * n]
    }
}

/// The value range a model's image tensors use (the manifest's `input_range`, e.g. [0, 1] or
/// [-1, 1]). Frames are read into [0,1]; this maps between the two, once each way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputRange {
    lo: f32,
    scale: f32,
}

impl InputRange {
    pub fn new(lo: f32, hi: f32) -> InputRange {
        InputRange { lo, scale: hi - lo }
    }

    pub fn from_manifest(range: [f32; 2]) -> InputRange {
        InputRange::new(range[0], range[1])
    }

    /// [0,1] to the model's range.
    #[inline]
    pub fn to_model(self, v: f32) -> f32 {
        v * self.scale + self.lo
    }

    /// The model's range to [0,1].
    #[inline]
    pub fn from_model(self, v: f32) -> f32 {
        (v - self.lo) / self.scale
    }

    /// True for [0,1], where both maps are the identity.
    pub fn is_unit(self) -> bool {
        self.lo == 0.0 && self.scale == 1.0
    }
}

impl Default for InputRange {
    fn default() -> Self {
        InputRange::new(0.0, 1.0)
    }
}

/// Reads `frame` into `dst` (resized to the frame), mapping 8-bit values to [0,1]. RGB F32
/// planar frames hold values in the model's `range` and are mapped from it.
pub fn read_frame(frame: &FrameRef, dst: &mut Planar, range: InputRange) {
    let l = &frame.layout;
    let (w, h) = (l.width, l.height);
    dst.reshape(w, h);
    let n = w * h;
    let (r_pl, rest) = dst.data.split_at_mut(n);
    let (g_pl, b_pl) = rest.split_at_mut(n);
    const INV: f32 = 1.0 / 255.0;
    let yuv = Yuv::new(l.color);
    for y in 0..h {
        let (r, g, b) = (&mut r_pl[y * w..][..w], &mut g_pl[y * w..][..w], &mut b_pl[y * w..][..w]);
        match l.format {
            PixelFormat::Gray8 => {
                let row = &frame.planes[0][y * l.strides[0]..][..w];
                for x in 0..w {
                    let v = row[x] as f32 * INV;
                    (r[x], g[x], b[x]) = (v, v, v);
                }
            }
            PixelFormat::RgbF32Planar => {
                for (c, out) in [r, g, b].into_iter().enumerate() {
                    let off = (c * h + y) * l.strides[0];
                    let row = &frame.planes[0][off..off + 4 * w];
                    for (o, bytes) in out.iter_mut().zip(row.chunks_exact(4)) {
                        *o = range.from_model(f32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
                    }
                }
            }
            PixelFormat::I420 | PixelFormat::Nv12 => {
                let yrow = &frame.planes[0][y * l.strides[0]..];
                let crow = &frame.planes[1][(y / 2) * l.strides[1]..];
                for x in 0..w {
                    let (u, v) = if l.format == PixelFormat::I420 {
                        (crow[x / 2], frame.planes[2][(y / 2) * l.strides[2] + x / 2])
                    } else {
                        (crow[(x / 2) * 2], crow[(x / 2) * 2 + 1])
                    };
                    [r[x], g[x], b[x]] = yuv.to_rgb(yrow[x], u, v);
                }
            }
            PixelFormat::Yuy2 => {
                let row = &frame.planes[0][y * l.strides[0]..];
                for x in 0..w {
                    let q = &row[(x / 2) * 4..(x / 2) * 4 + 4];
                    [r[x], g[x], b[x]] = yuv.to_rgb(q[(x % 2) * 2], q[1], q[3]);
                }
            }
            f => {
                let (bpp, [ro, go, bo]) = f.packed_rgb().expect("packed format");
                let row = &frame.planes[0][y * l.strides[0]..][..w * bpp];
                for (x, px) in row.chunks_exact(bpp).enumerate() {
                    r[x] = px[ro] as f32 * INV;
                    g[x] = px[go] as f32 * INV;
                    b[x] = px[bo] as f32 * INV;
                }
            }
        }
    }
}

/// Writes `src` (same size as the frame) into `frame`, clamping to [0,1] and rounding to 8 bits;
/// RGB F32 planar frames get unclamped values mapped to the model's `range`.
/// Alpha/x bytes and bytes outside the image rows are left untouched.
pub fn write_frame(src: &Planar, frame: &mut FrameMut, range: InputRange) {
    let l = frame.layout;
    let (w, h) = (l.width, l.height);
    debug_assert!(src.width == w && src.height == h);
    let (rp, gp, bp) = (src.plane(0), src.plane(1), src.plane(2));
    let px = |i: usize| [rp[i], gp[i], bp[i]];
    let yuv = Yuv::new(l.color);
    match l.format {
        PixelFormat::Gray8 => {
            let bt601 = Yuv::new(YuvColor { matrix: YuvMatrix::Bt601, full_range: true });
            for y in 0..h {
                let row = &mut frame.planes[0][y * l.strides[0]..][..w];
                for (x, o) in row.iter_mut().enumerate() {
                    *o = bt601.y8(bt601.luma(px(y * w + x)));
                }
            }
        }
        PixelFormat::RgbF32Planar => {
            for c in 0..3 {
                for y in 0..h {
                    let off = (c * h + y) * l.strides[0];
                    let row = &mut frame.planes[0][off..off + 4 * w];
                    for (bytes, v) in row.chunks_exact_mut(4).zip(&src.plane(c)[y * w..(y + 1) * w]) {
                        bytes.copy_from_slice(&range.to_model(*v).to_ne_bytes());
                    }
                }
            }
        }
        PixelFormat::I420 | PixelFormat::Nv12 => {
            for y in 0..h {
                let row = &mut frame.planes[0][y * l.strides[0]..][..w];
                for (x, o) in row.iter_mut().enumerate() {
                    *o = yuv.y8(yuv.luma(px(y * w + x)));
                }
            }
            for cy in 0..h.div_ceil(2) {
                for cx in 0..w.div_ceil(2) {
                    let (u, v) = yuv.uv8(mean_block(&px, w, h, cx * 2, cy * 2, 2));
                    if l.format == PixelFormat::I420 {
                        frame.planes[1][cy * l.strides[1] + cx] = u;
                        frame.planes[2][cy * l.strides[2] + cx] = v;
                    } else {
                        let o = cy * l.strides[1] + cx * 2;
                        frame.planes[1][o] = u;
                        frame.planes[1][o + 1] = v;
                    }
                }
            }
        }
        PixelFormat::Yuy2 => {
            for y in 0..h {
                let row = &mut frame.planes[0][y * l.strides[0]..];
                for cx in 0..w.div_ceil(2) {
                    let x0 = cx * 2;
                    let x1 = (x0 + 1).min(w - 1);
                    let (u, v) = yuv.uv8(mean_block(&px, w, h, x0, y, 1));
                    let q = &mut row[cx * 4..cx * 4 + 4];
                    q[0] = yuv.y8(yuv.luma(px(y * w + x0)));
                    q[1] = u;
                    q[2] = yuv.y8(yuv.luma(px(y * w + x1)));
                    q[3] = v;
                }
            }
        }
        f => {
            let (bpp, [ro, go, bo]) = f.packed_rgb().expect("packed format");
            for y in 0..h {
                let row = &mut frame.planes[0][y * l.strides[0]..][..w * bpp];
                for (x, o) in row.chunks_exact_mut(bpp).enumerate() {
                    let i = y * w + x;
                    o[ro] = to_u8(rp[i] * 255.0);
                    o[go] = to_u8(gp[i] * 255.0);
                    o[bo] = to_u8(bp[i] * 255.0);
                }
            }
        }
    }
}

/// Copies the pixels of `src` into `dst` row by row when both have the same format and size
/// (strides may differ); returns false, copying nothing, otherwise.
pub fn copy_frame(src: &FrameRef, dst: &mut FrameMut) -> bool {
    let (s, d) = (&src.layout, dst.layout);
    if s.format != d.format || s.width != d.width || s.height != d.height {
        return false;
    }
    for p in 0..s.format.planes() {
        let (row, rows) = s.format.plane_extent(p, s.width, s.height);
        for y in 0..rows {
            dst.planes[p][y * d.strides[p]..][..row].copy_from_slice(&src.planes[p][y * s.strides[p]..][..row]);
        }
    }
    true
}

/// Mean RGB of the 2x`rows` block at (x0, y0), clipped to the image.
#[inline]
fn mean_block(px: &impl Fn(usize) -> [f32; 3], w: usize, h: usize, x0: usize, y0: usize, rows: usize) -> [f32; 3] {
    let mut acc = [0.0f32; 3];
    let mut n = 0.0;
    for y in y0..(y0 + rows).min(h) {
        for x in x0..(x0 + 2).min(w) {
            let p = px(y * w + x);
            acc[0] += p[0];
            acc[1] += p[1];
            acc[2] += p[2];
            n += 1.0;
        }
    }
    acc.map(|a| a / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(format: PixelFormat, w: usize, h: usize, stride_pad: usize) -> (Vec<u8>, Vec<u8>) {
        let mut layout = FrameLayout::packed(format, w, h);
        for s in layout.strides.iter_mut() {
            if *s > 0 {
                *s += stride_pad;
            }
        }
        let len = layout.contiguous_len();
        let src: Vec<u8> = (0..len).map(|i| ((i * 37 + 11) % 200 + 28) as u8).collect();
        let mut planar = Planar::default();
        read_frame(&FrameRef::contiguous(layout, &src).unwrap(), &mut planar, InputRange::default());
        let mut out = src.clone();
        write_frame(&planar, &mut FrameMut::contiguous(layout, &mut out).unwrap(), InputRange::default());
        (src, out)
    }

    #[test]
    fn packed_rgb_formats_roundtrip_exactly_with_padded_strides() {
        for f in [PixelFormat::Rgb8, PixelFormat::Bgr8, PixelFormat::Rgba8, PixelFormat::Bgra8, PixelFormat::Rgbx8, PixelFormat::Bgrx8] {
            let (a, b) = roundtrip(f, 7, 5, 3);
            assert_eq!(a, b, "{f:?}");
        }
    }

    #[test]
    fn bgr_channel_order_is_honoured() {
        let layout = FrameLayout::packed(PixelFormat::Bgr8, 1, 1);
        let mut p = Planar::default();
        read_frame(&FrameRef::contiguous(layout, &[10, 20, 30]).unwrap(), &mut p, InputRange::default());
        let want = [30.0 / 255.0, 20.0 / 255.0, 10.0 / 255.0];
        assert!(p.data.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{:?}", p.data);
    }

    #[test]
    fn gray_reads_as_replicated_rgb_and_writes_luma() {
        let (a, b) = roundtrip(PixelFormat::Gray8, 5, 3, 1);
        assert_eq!(a, b);
    }

    #[test]
    fn yuv_formats_roundtrip_within_rounding_on_flat_chroma() {
        for f in [PixelFormat::I420, PixelFormat::Nv12, PixelFormat::Yuy2] {
            // An odd-width YUY2 row ends in a half-used macropixel whose second Y is not a pixel.
            let sizes: &[(usize, usize)] = if f == PixelFormat::Yuy2 { &[(6, 4), (4, 3)] } else { &[(6, 4), (5, 3)] };
            for &(w, h) in sizes {
                let layout = FrameLayout::packed(f, w, h);
                let mut src = vec![0u8; layout.contiguous_len()];
                // Luma ramp, constant chroma: exact up to 8-bit rounding after a round trip.
                let ylen = if f == PixelFormat::Yuy2 { 0 } else { layout.strides[0] * h };
                for (i, v) in src.iter_mut().enumerate() {
                    *v = if i < ylen { 40 + (i % 150) as u8 } else { 120 };
                }
                if f == PixelFormat::Yuy2 {
                    for (i, v) in src.iter_mut().enumerate() {
                        *v = if i % 2 == 0 { 40 + (i % 150) as u8 } else { 120 };
                    }
                }
                let mut planar = Planar::default();
                read_frame(&FrameRef::contiguous(layout, &src).unwrap(), &mut planar, InputRange::default());
                let mut out = vec![0u8; src.len()];
                write_frame(&planar, &mut FrameMut::contiguous(layout, &mut out).unwrap(), InputRange::default());
                for (i, (x, y)) in src.iter().zip(&out).enumerate() {
                    assert!((*x as i32 - *y as i32).abs() <= 1, "{f:?} {w}x{h} byte {i}: {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn planar_f32_roundtrip_is_exact() {
        let (a, b) = roundtrip(PixelFormat::RgbF32Planar, 4, 3, 8);
        assert_eq!(a.len(), b.len());
        // Only the bytes inside the rows are rewritten; compare as f32 where they are.
        assert_eq!(a, b);
    }

    #[test]
    fn planar_f32_frames_are_in_the_models_range() {
        // Documented: RGB F32 planar values are in the model's input range. Read maps them to
        // [0,1] once, write maps back once, so a [-1,1] model sees its own values unchanged.
        let range = InputRange::new(-1.0, 1.0);
        let layout = FrameLayout::packed(PixelFormat::RgbF32Planar, 2, 1);
        let values = [-1.0f32, 1.0, 0.0, 0.5, -0.5, 0.25];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let mut p = Planar::default();
        read_frame(&FrameRef::contiguous(layout, &bytes).unwrap(), &mut p, range);
        assert_eq!(p.data, vec![0.0, 1.0, 0.5, 0.75, 0.25, 0.625]);
        let tensor: Vec<f32> = p.data.iter().map(|v| range.to_model(*v)).collect();
        assert_eq!(tensor, values);
        let mut out = vec![0u8; bytes.len()];
        write_frame(&p, &mut FrameMut::contiguous(layout, &mut out).unwrap(), range);
        assert_eq!(out, bytes);
    }

    #[test]
    fn bad_geometry_is_rejected_with_a_reason() {
        let data = [0u8; 64];
        let e = FrameRef::contiguous(FrameLayout::packed(PixelFormat::Rgb8, 0, 0), &data).err().unwrap();
        assert!(e.message.contains("empty"), "{e}");
        let e = FrameRef::new(FrameLayout::new(PixelFormat::Rgb8, 4, 2, [11, 0, 0]), &[&data]).err().unwrap();
        assert!(e.message.contains("stride 11 is less than the row length 12"), "{e}");
        let e = FrameRef::new(FrameLayout::packed(PixelFormat::Rgb8, 8, 8), &[&data]).err().unwrap();
        assert!(e.message.contains("needs 192"), "{e}");
        let e = FrameRef::new(FrameLayout::packed(PixelFormat::I420, 4, 4), &[&data]).err().unwrap();
        assert!(e.message.contains("needs 3 planes"), "{e}");
    }
}
