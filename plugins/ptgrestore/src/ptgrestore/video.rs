//! GStreamer video formats and colorimetry <-> the engine's frame layouts.

use gst_video::{VideoColorMatrix, VideoColorRange, VideoFormat, VideoInfo};
use ptgrm::{FrameLayout, PixelFormat, YuvColor, YuvMatrix};

/// Formats the element accepts, in caps preference order (the engine reads and writes each natively).
pub const FORMATS: [VideoFormat; 9] = [
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::I420,
    VideoFormat::Nv12,
    VideoFormat::Yuy2,
];

pub fn pixel_format(format: VideoFormat) -> Option<PixelFormat> {
    Some(match format {
        VideoFormat::Rgb => PixelFormat::Rgb8,
        VideoFormat::Bgr => PixelFormat::Bgr8,
        VideoFormat::Rgba => PixelFormat::Rgba8,
        VideoFormat::Bgra => PixelFormat::Bgra8,
        VideoFormat::Rgbx => PixelFormat::Rgbx8,
        VideoFormat::Bgrx => PixelFormat::Bgrx8,
        VideoFormat::I420 => PixelFormat::I420,
        VideoFormat::Nv12 => PixelFormat::Nv12,
        VideoFormat::Yuy2 => PixelFormat::Yuy2,
        _ => return None,
    })
}

/// Formats with an alpha or padding byte the engine leaves untouched in the output.
pub fn has_fourth_byte(format: PixelFormat) -> bool {
    matches!(format, PixelFormat::Rgba8 | PixelFormat::Bgra8 | PixelFormat::Rgbx8 | PixelFormat::Bgrx8)
}

/// The YUV matrix and range the caps declare. The engine knows BT.601 and BT.709: FCC and
/// SMPTE 240M are close to 601/709 respectively; BT.2020 8-bit is rare and gets 709 (the caller
/// logs it). RGB formats ignore this.
pub fn yuv_color(info: &VideoInfo) -> (YuvColor, bool) {
    let c = info.colorimetry();
    let (matrix, exact) = match c.matrix() {
        VideoColorMatrix::Bt601 => (YuvMatrix::Bt601, true),
        VideoColorMatrix::Fcc => (YuvMatrix::Bt601, false),
        VideoColorMatrix::Bt709 => (YuvMatrix::Bt709, true),
        VideoColorMatrix::Smpte240m => (YuvMatrix::Bt709, false),
        // Unknown: GStreamer's own default for the size (SD 601, HD 709).
        VideoColorMatrix::Unknown if info.height() < 720 => (YuvMatrix::Bt601, true),
        VideoColorMatrix::Unknown | VideoColorMatrix::Rgb => (YuvMatrix::Bt709, true),
        _ => (YuvMatrix::Bt709, false),
    };
    let full_range = c.range() == VideoColorRange::Range0_255;
    (YuvColor { matrix, full_range }, exact)
}

/// Frame geometry from negotiated caps; strides are filled in per buffer (pools may pad rows).
pub fn layout(info: &VideoInfo) -> Option<FrameLayout> {
    let format = pixel_format(info.format())?;
    let mut layout = FrameLayout::new(format, info.width() as usize, info.height() as usize, [0; 3]);
    if matches!(format, PixelFormat::I420 | PixelFormat::Nv12 | PixelFormat::Yuy2) {
        layout.color = yuv_color(info).0;
    }
    Some(layout)
}

/// `layout` with the strides of a mapped frame; None if a stride is negative (bottom-up layouts
/// are not produced for these formats by any GStreamer element we know of).
pub fn with_strides(layout: FrameLayout, strides: &[i32]) -> Option<FrameLayout> {
    let mut out = layout;
    for (dst, &s) in out.strides.iter_mut().zip(strides) {
        *dst = usize::try_from(s).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caps_format_maps_to_the_engine_format_of_the_same_name() {
        for f in FORMATS {
            let p = pixel_format(f).expect("mapped");
            assert_eq!(p.name(), f.to_str(), "{f:?}");
        }
        assert_eq!(pixel_format(VideoFormat::Gray16Le), None);
    }

    #[test]
    fn colorimetry_from_caps_selects_matrix_and_range() {
        gst::init().unwrap();
        let info = |c: &str| VideoInfo::builder(VideoFormat::I420, 64, 48).colorimetry(&c.parse().unwrap()).build().unwrap();
        assert_eq!(yuv_color(&info("bt601")).0, YuvColor { matrix: YuvMatrix::Bt601, full_range: false });
        assert_eq!(yuv_color(&info("bt709")).0, YuvColor { matrix: YuvMatrix::Bt709, full_range: false });
        assert_eq!(yuv_color(&info("1:4:0:0")).0, YuvColor { matrix: YuvMatrix::Bt601, full_range: true });
        assert!(!yuv_color(&info("bt2020")).1);
        let l = layout(&info("1:4:0:0")).unwrap();
        assert_eq!((l.format, l.width, l.height), (PixelFormat::I420, 64, 48));
        assert!(l.color.full_range);
        assert_eq!(with_strides(l, &[64, 32, 32]).unwrap().strides, [64, 32, 32]);
        assert!(with_strides(l, &[-64, 32, 32]).is_none());
    }
}
