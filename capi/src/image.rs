//! `ptgrm_image`: a caller's frame (plane pointers, size, strides, format) and its validation.

use std::ffi::c_void;
use std::ptr::addr_of;

use super::status::{guard, non_null, ptgrm_status};
use ptgrm::error::{Error, Result};
use ptgrm::frame::{FrameLayout, PixelFormat, YuvColor, YuvMatrix};

/// Pixel format (a `uint32_t` so that any value a caller passes can be checked).
pub type ptgrm_pixel_format = u32;
/// Packed 8-bit R, G, B.
pub const PTGRM_FORMAT_RGB8: ptgrm_pixel_format = 0;
/// Packed 8-bit B, G, R.
pub const PTGRM_FORMAT_BGR8: ptgrm_pixel_format = 1;
/// Packed 8-bit R, G, B, A; alpha is not read and, in outputs, left untouched.
pub const PTGRM_FORMAT_RGBA8: ptgrm_pixel_format = 2;
/// Packed 8-bit B, G, R, A; alpha as for RGBA8.
pub const PTGRM_FORMAT_BGRA8: ptgrm_pixel_format = 3;
/// Packed 8-bit R, G, B, unused byte (left untouched in outputs).
pub const PTGRM_FORMAT_RGBX8: ptgrm_pixel_format = 4;
/// Packed 8-bit B, G, R, unused byte.
pub const PTGRM_FORMAT_BGRX8: ptgrm_pixel_format = 5;
/// 8-bit luma: read as grey RGB, written as the Rec.601 luma of the result.
pub const PTGRM_FORMAT_GRAY8: ptgrm_pixel_format = 6;
/// One buffer of three float planes R, G, B in the model's input range (usually 0..1);
/// `strides[0]` is the row stride in bytes, plane c starts at byte c * strides[0] * height.
pub const PTGRM_FORMAT_RGB_F32_PLANAR: ptgrm_pixel_format = 7;
/// Planar 4:2:0: planes[0] Y, planes[1] U, planes[2] V (chroma planes ceil(w/2) x ceil(h/2)).
pub const PTGRM_FORMAT_I420: ptgrm_pixel_format = 8;
/// Semi-planar 4:2:0: planes[0] Y, planes[1] interleaved U, V.
pub const PTGRM_FORMAT_NV12: ptgrm_pixel_format = 9;
/// Packed 4:2:2: Y0 U Y1 V.
pub const PTGRM_FORMAT_YUY2: ptgrm_pixel_format = 10;

/// Matrix and range of the YUV formats (ignored by the RGB and grey formats).
pub type ptgrm_yuv_color = u32;
/// BT.709, limited (16..235) range: the default (value 0, so a zeroed descriptor gets it).
pub const PTGRM_YUV_BT709_LIMITED: ptgrm_yuv_color = 0;
pub const PTGRM_YUV_BT709_FULL: ptgrm_yuv_color = 1;
pub const PTGRM_YUV_BT601_LIMITED: ptgrm_yuv_color = 2;
pub const PTGRM_YUV_BT601_FULL: ptgrm_yuv_color = 3;

/// Describes a frame in caller memory; libptgrm neither owns nor keeps the pixel memory.
///
/// Plane p holds `strides[p] * (rows - 1) + row_bytes` bytes, where row_bytes and rows follow from
/// the format (e.g. RGB8: 3 * width bytes, height rows; I420 plane 1: ceil(width/2) bytes,
/// ceil(height/2) rows). Entries of `planes`/`strides` beyond the format's plane count are ignored.
/// Zero-initialise the struct (or use `ptgrm_image_wrap`) so unused fields have defined values.
#[repr(C)]
pub struct ptgrm_image {
    /// A `PTGRM_FORMAT_*` value.
    pub format: ptgrm_pixel_format,
    /// Size in pixels, each 1..=32768.
    pub width: u32,
    pub height: u32,
    /// A `PTGRM_YUV_*` value; used by I420, NV12 and YUY2 only.
    pub yuv_color: ptgrm_yuv_color,
    /// Start of each plane. Input images are only read.
    pub planes: [*mut c_void; 3],
    /// Bytes from the start of one row to the next, per plane; at least the row length.
    pub strides: [usize; 3],
}

fn pixel_format(code: ptgrm_pixel_format) -> Result<PixelFormat> {
    // The codes are the positions in PixelFormat::ALL (checked by a test against the constants).
    PixelFormat::ALL.get(code as usize).copied().ok_or_else(|| Error::invalid(format!("unknown pixel format code {code}")))
}

fn yuv_color(code: ptgrm_yuv_color) -> Result<YuvColor> {
    let (matrix, full_range) = match code {
        PTGRM_YUV_BT709_LIMITED => (YuvMatrix::Bt709, false),
        PTGRM_YUV_BT709_FULL => (YuvMatrix::Bt709, true),
        PTGRM_YUV_BT601_LIMITED => (YuvMatrix::Bt601, false),
        PTGRM_YUV_BT601_FULL => (YuvMatrix::Bt601, true),
        other => return Err(Error::invalid(format!("unknown YUV color code {other}"))),
    };
    Ok(YuvColor { matrix, full_range })
}

/// A validated caller frame: its layout and the byte span of each plane.
pub(crate) struct Spans {
    pub layout: FrameLayout,
    pub planes: Vec<(*mut u8, usize)>,
}

impl Spans {
    /// True when any plane of `self` shares a byte with any plane of `other`.
    pub fn overlaps(&self, other: &Spans) -> bool {
        self.planes.iter().any(|a| other.planes.iter().any(|b| spans_overlap(*a, *b)))
    }

    /// Index pairs of planes of `self` that share bytes (outputs must not).
    pub fn self_overlap(&self) -> Option<(usize, usize)> {
        for i in 0..self.planes.len() {
            for j in i + 1..self.planes.len() {
                if spans_overlap(self.planes[i], self.planes[j]) {
                    return Some((i, j));
                }
            }
        }
        None
    }
}

fn spans_overlap(a: (*mut u8, usize), b: (*mut u8, usize)) -> bool {
    let (a0, b0) = (a.0 as usize, b.0 as usize);
    a.1 > 0 && b.1 > 0 && a0 < b0 + b.1 && b0 < a0 + a.1
}

/// Checks a caller's descriptor before any slice is formed over its memory.
///
/// # Safety
/// `img` is NULL or points to a readable `ptgrm_image`.
pub(crate) unsafe fn spans(img: *const ptgrm_image, role: &str) -> Result<Spans> {
    let img = non_null(img, &format!("{role} image"))?;
    // SAFETY: `img` is non-NULL and the caller promises a readable descriptor; fields are read as
    // plain integers/pointers.
    let (code, width, height, color, planes, strides) = unsafe {
        (
            addr_of!((*img).format).read_unaligned(),
            addr_of!((*img).width).read_unaligned() as usize,
            addr_of!((*img).height).read_unaligned() as usize,
            addr_of!((*img).yuv_color).read_unaligned(),
            addr_of!((*img).planes).read_unaligned(),
            addr_of!((*img).strides).read_unaligned(),
        )
    };
    let format = pixel_format(code).map_err(|e| Error::invalid(format!("{role} image: {e}")))?;
    if width == 0 || height == 0 {
        return Err(Error::invalid(format!("{role} image size {width}x{height} is empty")));
    }
    let mut layout = FrameLayout::new(format, width, height, strides);
    if matches!(format, PixelFormat::I420 | PixelFormat::Nv12 | PixelFormat::Yuy2) {
        layout.color = yuv_color(color).map_err(|e| Error::invalid(format!("{role} image: {e}")))?;
    }
    let mut out = Vec::with_capacity(format.planes());
    for (p, (&ptr, &stride)) in planes.iter().zip(&strides).take(format.planes()).enumerate() {
        let (row, rows) = format.plane_extent(p, width, height);
        if ptr.is_null() {
            return Err(Error::invalid(format!("{role} image plane {p} of {} is NULL", format.name())));
        }
        if stride < row {
            return Err(Error::invalid(format!(
                "{role} image {} plane {p} stride {stride} is less than the row length {row} for width {width}",
                format.name()
            )));
        }
        let len = stride
            .checked_mul(rows - 1)
            .and_then(|n| n.checked_add(row))
            .filter(|&n| n <= isize::MAX as usize && (ptr as usize).checked_add(n).is_some())
            .ok_or_else(|| Error::invalid(format!("{role} image plane {p}: stride {stride} x {rows} rows overflows memory")))?;
        out.push((ptr.cast::<u8>(), len));
    }
    Ok(Spans { layout, planes: out })
}

/// Size in bytes of a tightly packed buffer for a `width` x `height` frame of `format`, all planes
/// back to back (the layout `ptgrm_image_wrap` describes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_image_buffer_size(
    format: ptgrm_pixel_format,
    width: u32,
    height: u32,
    out_size: *mut usize,
) -> ptgrm_status {
    guard(|| {
        let out = non_null(out_size, "out_size")?.cast_mut();
        let layout = FrameLayout::packed(pixel_format(format)?, width as usize, height as usize);
        // SAFETY: non-NULL, caller-provided writable size_t.
        unsafe { out.write_unaligned(layout.contiguous_len()) };
        Ok(())
    })
}

/// Fills `img` to describe a tightly packed `width` x `height` frame of `format` in `data`
/// (planes back to back, default YUV color). Fails if `data_len` is smaller than
/// `ptgrm_image_buffer_size` or the size is empty.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_image_wrap(
    img: *mut ptgrm_image,
    format: ptgrm_pixel_format,
    width: u32,
    height: u32,
    data: *mut c_void,
    data_len: usize,
) -> ptgrm_status {
    guard(|| {
        let img = non_null(img, "image")?.cast_mut();
        let data = non_null(data, "data")?.cast_mut().cast::<u8>();
        let f = pixel_format(format)?;
        if width == 0 || height == 0 {
            return Err(Error::invalid(format!("image size {width}x{height} is empty")));
        }
        let layout = FrameLayout::packed(f, width as usize, height as usize);
        let need = layout.contiguous_len();
        if data_len < need {
            return Err(Error::invalid(format!("{} {width}x{height} needs {need} bytes, data_len is {data_len}", f.name())));
        }
        let mut planes = [std::ptr::null_mut::<c_void>(); 3];
        let mut offset = 0;
        for (p, plane) in planes.iter_mut().enumerate().take(f.planes()) {
            // SAFETY: offset stays within `need <= data_len` bytes of `data`.
            *plane = unsafe { data.add(offset) }.cast();
            offset += layout.strides[p] * f.plane_extent(p, layout.width, layout.height).1;
        }
        let desc = ptgrm_image { format, width, height, yuv_color: PTGRM_YUV_BT709_LIMITED, planes, strides: layout.strides };
        // SAFETY: non-NULL, caller-provided writable descriptor.
        unsafe { img.write_unaligned(desc) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_codes_follow_pixel_format_all() {
        let codes = [
            (PTGRM_FORMAT_RGB8, PixelFormat::Rgb8),
            (PTGRM_FORMAT_BGR8, PixelFormat::Bgr8),
            (PTGRM_FORMAT_RGBA8, PixelFormat::Rgba8),
            (PTGRM_FORMAT_BGRA8, PixelFormat::Bgra8),
            (PTGRM_FORMAT_RGBX8, PixelFormat::Rgbx8),
            (PTGRM_FORMAT_BGRX8, PixelFormat::Bgrx8),
            (PTGRM_FORMAT_GRAY8, PixelFormat::Gray8),
            (PTGRM_FORMAT_RGB_F32_PLANAR, PixelFormat::RgbF32Planar),
            (PTGRM_FORMAT_I420, PixelFormat::I420),
            (PTGRM_FORMAT_NV12, PixelFormat::Nv12),
            (PTGRM_FORMAT_YUY2, PixelFormat::Yuy2),
        ];
        assert_eq!(codes.len(), PixelFormat::ALL.len(), "a pixel format has no C code");
        for (code, f) in codes {
            assert_eq!(pixel_format(code).unwrap(), f);
        }
    }
}
