//! Pixel-level behaviour: passthrough at strength 0, blending, GstController-driven strength,
//! and agreement between the RGB and the native YUV paths.

mod common;

use common::*;
use gst::prelude::*;
use gst_controller::prelude::*;

const FORMATS: [&str; 9] = ["RGB", "BGR", "RGBA", "BGRA", "RGBx", "BGRx", "I420", "NV12", "YUY2"];

fn element(strength: f64) -> gst::Element {
    init();
    gst::ElementFactory::make("ptgrestore")
        .property("model", bundle().display().to_string())
        .property("strength", strength)
        .build()
        .unwrap()
}

fn harness(element: &gst::Element, caps: &gst::Caps) -> gst_check::Harness {
    let mut h = gst_check::Harness::with_element(element, Some("sink"), Some("src"));
    h.set_src_caps(caps.clone());
    h
}

fn caps(format: &str, w: u32, h: u32) -> gst::Caps {
    init();
    format!("video/x-raw,format={format},width={w},height={h},framerate=30/1").parse().unwrap()
}

fn bytes(buffer: &gst::Buffer) -> Vec<u8> {
    buffer.map_readable().unwrap().to_vec()
}

#[test]
fn strength_zero_passes_every_format_through_bit_exact() {
    for format in FORMATS {
        // 66x50: RGB rows of 198 bytes get padded strides, chroma planes odd sizes.
        let caps = caps(format, 66, 50);
        let mut h = harness(&element(0.0), &caps);
        for i in 0..3 {
            let input = buffer_for(&caps, i, |j| texture(j + i as usize));
            let expected = bytes(&input);
            let out = h.push_and_pull(input).unwrap();
            assert_eq!(bytes(&out), expected, "{format} frame {i}");
        }
    }
}

#[test]
fn nonzero_strength_processes_and_half_strength_blends() {
    let caps = caps("RGB", 64, 48);
    let elem = element(1.0);
    let mut h = harness(&elem, &caps);
    let input = buffer_for(&caps, 0, texture);
    let original = bytes(&input);
    let full = bytes(&h.push_and_pull(input.clone()).unwrap());
    assert_ne!(full, original, "strength 1 must run the model");

    elem.set_property("strength", 0.0);
    let off = bytes(&h.push_and_pull(input.clone()).unwrap());
    assert_eq!(off, original, "strength set to 0 while playing must pass through");

    elem.set_property("strength", 0.5);
    let half = bytes(&h.push_and_pull(input).unwrap());
    for (i, ((&o, &f), &b)) in original.iter().zip(&full).zip(&half).enumerate() {
        let expected = (o as f64 + f as f64) / 2.0;
        assert!((b as f64 - expected).abs() <= 1.0, "byte {i}: input {o}, full {f}, half {b}");
    }
}

#[test]
fn alpha_comes_from_the_input_frame() {
    for (format, alpha) in [("RGBA", 3), ("BGRA", 3)] {
        let caps = caps(format, 64, 48);
        let mut h = harness(&element(1.0), &caps);
        for i in 0..3 {
            // Alpha differs per frame, so a recycled output buffer cannot pass by accident.
            let input = buffer_for(&caps, i, |j| if j % 4 == alpha { (j / 4 % 200) as u8 + i as u8 * 20 } else { texture(j) });
            let original = bytes(&input);
            let out = bytes(&h.push_and_pull(input).unwrap());
            let alphas = |v: &[u8]| v.iter().skip(alpha).step_by(4).copied().collect::<Vec<_>>();
            assert_eq!(alphas(&out), alphas(&original), "{format} frame {i}");
            assert_ne!(out, original, "{format}: colour must be processed");
        }
    }
}

#[test]
fn controller_drives_strength_by_stream_time() {
    let caps = caps("I420", 64, 48);
    let elem = element(1.0);
    // Step from 0 (passthrough) to 1 at 90 ms; frames are 33.3 ms apart (frame 3 at 99.9 ms).
    let source = gst_controller::InterpolationControlSource::new();
    source.set_mode(gst_controller::InterpolationMode::None);
    source.set(gst::ClockTime::ZERO, 0.0);
    source.set(gst::ClockTime::from_mseconds(90), 1.0);
    elem.add_control_binding(&gst_controller::DirectControlBinding::new_absolute(&elem, "strength", &source)).unwrap();
    let mut h = harness(&elem, &caps);
    for i in 0..6u64 {
        let input = buffer_for(&caps, i, texture);
        let original = bytes(&input);
        let out = bytes(&h.push_and_pull(input).unwrap());
        if i < 3 {
            assert_eq!(out, original, "frame {i} at {} ms is before the step", i * 33);
        } else {
            assert_ne!(out, original, "frame {i} at {} ms is after the step", i * 33);
        }
    }
    assert_eq!(elem.property::<f64>("strength"), 1.0);
}

/// YUV matrix constants and range of a colorimetry name, as the caps declare them.
struct Yuv {
    kr: f64,
    kb: f64,
    full: bool,
}

impl Yuv {
    fn of(colorimetry: &str) -> Yuv {
        match colorimetry {
            "bt601" => Yuv { kr: 0.299, kb: 0.114, full: false },
            "bt709" => Yuv { kr: 0.2126, kb: 0.0722, full: false },
            // Full-range BT.601 (JPEG-style): range 1, matrix 4.
            "1:4:0:0" => Yuv { kr: 0.299, kb: 0.114, full: true },
            other => panic!("{other}"),
        }
    }
    fn offsets(&self) -> (f64, f64, f64) {
        if self.full { (0.0, 255.0, 255.0) } else { (16.0, 219.0, 224.0) }
    }
    /// RGB in [0, 255] -> unrounded 8-bit Y, U, V code values.
    fn encode(&self, rgb: [f64; 3]) -> [f64; 3] {
        let [r, g, b] = rgb.map(|v| v / 255.0);
        let y = self.kr * r + (1.0 - self.kr - self.kb) * g + self.kb * b;
        let pb = (b - y) / (2.0 * (1.0 - self.kb));
        let pr = (r - y) / (2.0 * (1.0 - self.kr));
        let (yo, ys, cs) = self.offsets();
        [yo + y * ys, 128.0 + pb * cs, 128.0 + pr * cs]
    }
    /// 8-bit Y, U, V -> 8-bit RGB (rounded, clamped).
    fn decode(&self, y: u8, u: u8, v: u8) -> [u8; 3] {
        let (yo, ys, cs) = self.offsets();
        let yf = (y as f64 - yo) / ys;
        let pb = (u as f64 - 128.0) / cs;
        let pr = (v as f64 - 128.0) / cs;
        let r = yf + 2.0 * (1.0 - self.kr) * pr;
        let b = yf + 2.0 * (1.0 - self.kb) * pb;
        let g = (yf - self.kr * r - self.kb * b) / (1.0 - self.kr - self.kb);
        [r, g, b].map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8)
    }
}

fn round8(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Y plane and chroma planes (means over `sx` x `sy` blocks) of an RGB picture given per pixel.
fn encode_planes(w: usize, h: usize, yuv: &Yuv, (sx, sy): (usize, usize), px: impl Fn(usize, usize) -> [f64; 3]) -> [Vec<f64>; 3] {
    let luma = (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).map(|(x, y)| yuv.encode(px(x, y))[0]).collect();
    let (mut u, mut v) = (Vec::new(), Vec::new());
    for cy in 0..h.div_ceil(sy) {
        for cx in 0..w.div_ceil(sx) {
            let mut acc = [0.0; 3];
            let mut n = 0.0;
            for y in cy * sy..((cy + 1) * sy).min(h) {
                for x in cx * sx..((cx + 1) * sx).min(w) {
                    let p = px(x, y);
                    (0..3).for_each(|c| acc[c] += p[c]);
                    n += 1.0;
                }
            }
            let e = yuv.encode(acc.map(|a| a / n));
            u.push(e[1]);
            v.push(e[2]);
        }
    }
    [luma, u, v]
}

/// Packs Y, U, V planes into the byte layout of `format` (no row padding).
fn pack_yuv(format: &str, w: usize, [y, u, v]: &[Vec<u8>; 3]) -> Vec<u8> {
    match format {
        "I420" => [y.as_slice(), u, v].concat(),
        "NV12" => [y.clone(), u.iter().zip(v).flat_map(|(&a, &b)| [a, b]).collect()].concat(),
        "YUY2" => y
            .chunks(w)
            .enumerate()
            .flat_map(|(row, ys)| {
                let cw = w / 2;
                (0..cw).flat_map(move |c| [ys[2 * c], u[row * cw + c], ys[2 * c + 1], v[row * cw + c]])
            })
            .collect(),
        f => panic!("{f}"),
    }
}

/// Splits a YUV frame's packed planes into Y, U and V.
fn split_yuv(format: &str, planes: &[Vec<u8>]) -> [Vec<u8>; 3] {
    match format {
        "I420" => [planes[0].clone(), planes[1].clone(), planes[2].clone()],
        "NV12" => {
            [planes[0].clone(), planes[1].iter().step_by(2).copied().collect(), planes[1].iter().skip(1).step_by(2).copied().collect()]
        }
        "YUY2" => [
            planes[0].iter().step_by(2).copied().collect(),
            planes[0].iter().skip(1).step_by(4).copied().collect(),
            planes[0].iter().skip(3).step_by(4).copied().collect(),
        ],
        f => panic!("{f}"),
    }
}

/// One frame through appsrc ! ptgrestore ! appsink.
fn process(caps: &str, data: Vec<u8>) -> Vec<Vec<u8>> {
    let caps: gst::Caps = caps.parse().unwrap();
    assert_eq!(gst_video::VideoInfo::from_caps(&caps).unwrap().size(), data.len(), "{caps}: test data is unpadded");
    let p = pipeline("appsrc name=src format=time ! ptgrestore model={model} ! appsink name=sink");
    let src: gst_app::AppSrc = by_name(&p, "src");
    src.set_caps(Some(&caps));
    src.push_buffer(gst::Buffer::from_mut_slice(data)).unwrap();
    src.end_of_stream().unwrap();
    let out = run_to_eos(&p, "sink");
    assert_eq!(out.len(), 1);
    packed_planes(&out[0]).1
}

/// A smooth colour picture given as YUV (chroma subsampled as `format` does) goes through
/// ptgrestore natively, and the same picture decoded to RGB goes through the RGB path. The
/// RGB result, encoded with the caps' matrix, range and subsampling, must match the native
/// result up to 8-bit rounding (of the RGB input and of each output), amplified a little by
/// the model.
fn yuv_and_rgb_paths_agree(format: &str, colorimetry: &str) {
    init();
    let (w, h) = (96usize, 64usize);
    let yuv = Yuv::of(colorimetry);
    let sub = if format == "YUY2" { (2, 1) } else { (2, 2) };
    let picture = |x: usize, y: usize| {
        let (fx, fy) = (x as f64 / w as f64, y as f64 / h as f64);
        [40.0 + 170.0 * fx, 60.0 + 120.0 * fy, 200.0 - 120.0 * (fx * fy).sqrt()]
    };
    let planes = encode_planes(w, h, &yuv, sub, picture).map(|p| p.into_iter().map(round8).collect::<Vec<_>>());
    let (cw, ch) = (w / sub.0, h / sub.1);
    let rgb: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .flat_map(|(x, y)| {
            let c = (y / sub.1) * cw + x / sub.0;
            yuv.decode(planes[0][y * w + x], planes[1][c], planes[2][c])
        })
        .collect();
    assert_eq!(planes[1].len(), cw * ch);

    let native =
        process(&format!("video/x-raw,format={format},width={w},height={h},colorimetry={colorimetry}"), pack_yuv(format, w, &planes));
    let via_rgb = process(&format!("video/x-raw,format=RGB,width={w},height={h}"), rgb);
    let rgb_out = &via_rgb[0];
    let expected = encode_planes(w, h, &yuv, sub, |x, y| {
        let o = (y * w + x) * 3;
        [rgb_out[o] as f64, rgb_out[o + 1] as f64, rgb_out[o + 2] as f64]
    });
    let actual = split_yuv(format, &native);
    for (c, name) in ["Y", "U", "V"].iter().enumerate() {
        let errs: Vec<f64> = actual[c].iter().zip(&expected[c]).map(|(&a, &e)| (a as f64 - e).abs()).collect();
        let max = errs.iter().cloned().fold(0.0, f64::max);
        let mean = errs.iter().sum::<f64>() / errs.len() as f64;
        eprintln!("{format} {colorimetry} {name}: max {max:.2}, mean {mean:.3}");
        assert!(max <= 2.5 && mean <= 0.6, "{format} {colorimetry} {name}: max {max:.2}, mean {mean:.3}");
    }
}

#[test]
fn i420_path_agrees_with_rgb_path() {
    for c in ["bt601", "bt709", "1:4:0:0"] {
        yuv_and_rgb_paths_agree("I420", c);
    }
}

#[test]
fn nv12_path_agrees_with_rgb_path() {
    for c in ["bt601", "bt709", "1:4:0:0"] {
        yuv_and_rgb_paths_agree("NV12", c);
    }
}

#[test]
fn yuy2_path_agrees_with_rgb_path() {
    yuv_and_rgb_paths_agree("YUY2", "bt709");
}
