//! The C ABI called directly from Rust, as a C program would: argument checking (NULL pointers,
//! strides, sizes, codes, struct_size), results, last-error messages and threading rules.

#[path = "../tests/support/mod.rs"]
mod support;

use std::ffi::{CStr, CString, c_void};
use std::mem::size_of;
use std::ptr::{null, null_mut};

use crate::engine::*;
use crate::image::*;
use crate::options::*;
use crate::status::{ptgrm_last_error, ptgrm_status, ptgrm_version};
use ptgrm_status::*;
use support::{bundle_dir, picture};

/// The calling thread's last-error message.
fn last_error() -> String {
    // SAFETY: ptgrm_last_error never returns NULL and the text is valid until the next call.
    unsafe { CStr::from_ptr(ptgrm_last_error()) }.to_string_lossy().into_owned()
}

fn options() -> ptgrm_options {
    let mut o = std::mem::MaybeUninit::<ptgrm_options>::uninit();
    // SAFETY: init writes every field of a sizeof-sized struct.
    unsafe {
        assert_eq!(ptgrm_options_init(o.as_mut_ptr(), size_of::<ptgrm_options>()), PTGRM_OK);
        o.assume_init()
    }
}

/// Engine on CPU with one thread, so results do not depend on the machine.
fn engine() -> *mut ptgrm_engine {
    let mut o = options();
    o.provider = PTGRM_PROVIDER_CPU;
    o.threads = 1;
    let dir = CString::new(bundle_dir().to_str().unwrap()).unwrap();
    let mut e = null_mut();
    let st = unsafe { ptgrm_engine_create(dir.as_ptr(), &o, &mut e) };
    assert_eq!(st, PTGRM_OK, "{}", last_error());
    assert!(!e.is_null());
    e
}

fn rgb(buf: &mut [u8], w: u32, h: u32) -> ptgrm_image {
    rgb_strided(buf, w, h, w as usize * 3)
}

fn rgb_strided(buf: &mut [u8], w: u32, h: u32, stride: usize) -> ptgrm_image {
    assert!(buf.len() >= stride * h as usize);
    ptgrm_image {
        format: PTGRM_FORMAT_RGB8,
        width: w,
        height: h,
        yuv_color: 0,
        planes: [buf.as_mut_ptr().cast(), null_mut(), null_mut()],
        strides: [stride, 0, 0],
    }
}

fn process(e: *mut ptgrm_engine, input: &ptgrm_image, output: &ptgrm_image) -> ptgrm_status {
    unsafe { ptgrm_engine_process(e, input, output) }
}

#[test]
fn version_and_provider_names() {
    let v = unsafe { CStr::from_ptr(ptgrm_version()) };
    assert_eq!(v.to_str().unwrap(), ptgrm::VERSION);
    let name = |p| unsafe { CStr::from_ptr(ptgrm_provider_name(p)) }.to_str().unwrap().to_owned();
    assert_eq!(name(PTGRM_PROVIDER_AUTO), "auto");
    assert_eq!(name(PTGRM_PROVIDER_TENSORRT), "tensorrt");
    assert_eq!(name(PTGRM_PROVIDER_CUDA), "cuda");
    assert_eq!(name(PTGRM_PROVIDER_CPU), "cpu");
    assert!(ptgrm_provider_name(99).is_null());
}

#[test]
fn options_init_gives_the_engine_defaults() {
    let o = options();
    let d = ptgrm::EngineOptions::default();
    assert_eq!(o.struct_size, size_of::<ptgrm_options>());
    assert!(o.ort_library.is_null() && o.engine_cache_dir.is_null());
    assert_eq!(o.provider, PTGRM_PROVIDER_AUTO);
    assert_eq!(o.device_id, d.device_id);
    assert_eq!(o.fp16, 0);
    assert_eq!(o.threads as usize, d.threads);
    assert_eq!((o.max_width as usize, o.max_height as usize), d.max_resolution);
    assert_eq!((o.tile_size as usize, o.tile_overlap as usize), (d.tile_size, d.tile_overlap));
    assert_eq!(o.prior_interval, d.prior_interval);
    assert_eq!(o.prior_smoothing, d.prior_smoothing);
    assert_eq!(o.strength, d.strength);
    assert_eq!((o.spinning, o.prior_no_glide), (d.spinning as u8, !d.prior_glide as u8));
}

#[test]
fn a_first_version_caller_gets_no_writes_past_its_struct_and_the_defaults_of_newer_fields() {
    // Version 0.1's struct ended at `fp16` (plus padding up to its 8-byte alignment).
    let v1 = std::mem::offset_of!(ptgrm_options, fp16) + 1;
    let mut raw = [0xAAu8; size_of::<ptgrm_options>()];
    assert_eq!(unsafe { ptgrm_options_init(raw.as_mut_ptr().cast(), v1) }, PTGRM_OK, "{}", last_error());
    assert!(raw[v1..].iter().all(|&b| b == 0xAA), "wrote past struct_size");
    let mut o = options();
    o.struct_size = v1;
    o.provider = PTGRM_PROVIDER_CPU;
    o.spinning = 7; // beyond the caller's struct: never read
    assert_eq!(create_with(&o).0, PTGRM_OK, "{}", last_error());
}

#[test]
fn options_init_rejects_null_and_short_structs_and_zeroes_a_newer_callers_tail() {
    assert_eq!(unsafe { ptgrm_options_init(null_mut(), size_of::<ptgrm_options>()) }, PTGRM_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("options is NULL"), "{}", last_error());

    let mut o = options();
    assert_eq!(unsafe { ptgrm_options_init(&mut o, 8) }, PTGRM_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("struct_size 8"), "{}", last_error());

    // A caller from a future version with 16 more bytes: the tail is zeroed, the known part filled.
    let mut big = [0xAAu8; size_of::<ptgrm_options>() + 16];
    let st = unsafe { ptgrm_options_init(big.as_mut_ptr().cast(), big.len()) };
    assert_eq!(st, PTGRM_OK, "{}", last_error());
    assert!(big[size_of::<ptgrm_options>()..].iter().all(|&b| b == 0));
    assert_eq!(usize::from_ne_bytes(big[..8].try_into().unwrap()), big.len());
    assert_eq!(last_error(), "", "success clears the last error");
}

fn create_with(o: &ptgrm_options) -> (ptgrm_status, String) {
    let dir = CString::new(bundle_dir().to_str().unwrap()).unwrap();
    let mut e = 0x1 as *mut ptgrm_engine; // must be reset to NULL on failure
    let st = unsafe { ptgrm_engine_create(dir.as_ptr(), o, &mut e) };
    let msg = last_error();
    if st == PTGRM_OK {
        unsafe { ptgrm_engine_destroy(e) };
    } else {
        assert!(e.is_null(), "out_engine must be NULL after a failure");
    }
    (st, msg)
}

#[test]
fn create_rejects_bad_options_with_reasons() {
    let mut o = options();
    o.struct_size = 16;
    let (st, msg) = create_with(&o);
    assert_eq!(st, PTGRM_ERR_INVALID_ARGUMENT);
    assert!(msg.contains("struct_size 16 is smaller"), "{msg}");

    let mut o = options();
    o.provider = 9;
    let (st, msg) = create_with(&o);
    assert_eq!(st, PTGRM_ERR_INVALID_ARGUMENT);
    assert!(msg.contains("unknown provider code 9"), "{msg}");

    let mut o = options();
    o.fp16 = 7;
    let (st, msg) = create_with(&o);
    assert_eq!(st, PTGRM_ERR_INVALID_ARGUMENT);
    assert!(msg.contains("fp16 must be 0 or 1"), "{msg}");

    for (field, set) in [
        ("spinning", &(|o: &mut ptgrm_options| o.spinning = 2) as &dyn Fn(&mut ptgrm_options)),
        ("prior_no_glide", &|o| o.prior_no_glide = 3),
    ] {
        let mut o = options();
        set(&mut o);
        let (st, msg) = create_with(&o);
        assert_eq!(st, PTGRM_ERR_INVALID_ARGUMENT);
        assert!(msg.contains(&format!("{field} must be 0 or 1")), "{msg}");
    }

    let mut o = options();
    o.strength = 1.5;
    let (st, msg) = create_with(&o);
    assert_eq!(st, PTGRM_ERR_INVALID_ARGUMENT);
    assert!(msg.contains("strength"), "{msg}");

    let mut o = options();
    o.prior_interval = 0;
    assert_eq!(create_with(&o).0, PTGRM_ERR_INVALID_ARGUMENT);
}

#[test]
fn create_accepts_a_newer_callers_struct_only_when_unknown_fields_are_zero() {
    #[repr(C)]
    struct Newer {
        known: ptgrm_options,
        future_field: u64,
    }
    let mut n = Newer { known: options(), future_field: 0 };
    n.known.struct_size = size_of::<Newer>();
    n.known.provider = PTGRM_PROVIDER_CPU;
    let (st, msg) = create_with(&n.known);
    assert_eq!(st, PTGRM_OK, "{msg}");

    n.future_field = 3;
    let (st, msg) = create_with(&n.known);
    assert_eq!(st, PTGRM_ERR_INVALID_ARGUMENT);
    assert!(msg.contains("knows only the first"), "{msg}");
}

#[test]
fn create_reports_null_out_pointer_missing_bundle_and_absent_gpu_provider() {
    let st = unsafe { ptgrm_engine_create(null(), null(), null_mut()) };
    assert_eq!(st, PTGRM_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("out_engine is NULL"), "{}", last_error());

    let missing = c"/nonexistent/ptgrm-bundle";
    let mut e = null_mut();
    let st = unsafe { ptgrm_engine_create(missing.as_ptr(), null(), &mut e) };
    assert_eq!(st, PTGRM_ERR_MODEL, "{}", last_error());
    assert!(last_error().contains("/nonexistent/ptgrm-bundle"), "{}", last_error());
    assert!(e.is_null());

    // The ONNX Runtime used by the tests is the CPU build: CUDA asked for explicitly must fail.
    let mut o = options();
    o.provider = PTGRM_PROVIDER_CUDA;
    let (st, msg) = create_with(&o);
    assert_eq!(st, PTGRM_ERR_PROVIDER, "{msg}");
    assert!(msg.to_lowercase().contains("cuda"), "{msg}");
}

#[test]
fn engine_runs_on_cpu_and_reports_it() {
    let e = engine();
    let mut p = 0;
    assert_eq!(unsafe { ptgrm_engine_active_provider(e, &mut p) }, PTGRM_OK);
    assert_eq!(p, PTGRM_PROVIDER_CPU);
    assert_eq!(unsafe { ptgrm_engine_active_provider(e, null_mut()) }, PTGRM_ERR_INVALID_ARGUMENT);
    assert!(!unsafe { ptgrm_engine_provider_log(e) }.is_null());
    assert!(unsafe { ptgrm_engine_provider_log(null()) }.is_null());
    unsafe { ptgrm_engine_destroy(e) };
    unsafe { ptgrm_engine_destroy(null_mut()) };
}

#[test]
fn process_matches_the_rust_engine_and_keeps_stride_padding() {
    let (w, h) = (37u32, 21u32);
    let pic = picture(w as usize, h as usize);
    // Rust API reference result.
    let mut opts = ptgrm::EngineOptions::default();
    opts.provider = ptgrm::ProviderRequest::Cpu;
    opts.threads = 1;
    let mut reference_engine = ptgrm::Engine::load(bundle_dir(), &opts).unwrap();
    let layout = ptgrm::FrameLayout::packed(ptgrm::PixelFormat::Rgb8, w as usize, h as usize);
    let mut expected = vec![0u8; pic.len()];
    reference_engine
        .process(&ptgrm::FrameRef::contiguous(layout, &pic).unwrap(), &mut ptgrm::FrameMut::contiguous(layout, &mut expected).unwrap())
        .unwrap();
    assert_ne!(expected, pic, "the test model must change the picture");

    // Same frame through the C ABI, input and output with padded rows.
    let stride = w as usize * 3 + 13;
    let mut input = vec![0u8; stride * h as usize];
    for y in 0..h as usize {
        input[y * stride..][..w as usize * 3].copy_from_slice(&pic[y * w as usize * 3..][..w as usize * 3]);
    }
    let mut output = vec![0x5Au8; stride * h as usize];
    let e = engine();
    let (i, o) = (rgb_strided(&mut input, w, h, stride), rgb_strided(&mut output, w, h, stride));
    assert_eq!(process(e, &i, &o), PTGRM_OK, "{}", last_error());
    for y in 0..h as usize {
        let row = &output[y * stride..(y + 1) * stride];
        assert_eq!(&row[..w as usize * 3], &expected[y * w as usize * 3..][..w as usize * 3], "row {y}");
        assert!(row[w as usize * 3..].iter().all(|&b| b == 0x5A), "padding of row {y} was written");
    }
    unsafe { ptgrm_engine_destroy(e) };
}

#[test]
fn in_place_processing_equals_separate_buffers() {
    let (w, h) = (24u32, 16u32);
    let e = engine();
    let mut src = picture(w as usize, h as usize);
    let mut out = vec![0u8; src.len()];
    let (i, o) = (rgb(&mut src, w, h), rgb(&mut out, w, h));
    assert_eq!(process(e, &i, &o), PTGRM_OK, "{}", last_error());
    let mut inplace = picture(w as usize, h as usize);
    let io = rgb(&mut inplace, w, h);
    assert_eq!(unsafe { ptgrm_engine_reset_prior(e) }, PTGRM_OK);
    assert_eq!(process(e, &io, &io), PTGRM_OK, "{}", last_error());
    assert_eq!(inplace, out);
    unsafe { ptgrm_engine_destroy(e) };
}

#[test]
fn strength_zero_copies_the_input_and_setters_validate() {
    let (w, h) = (16u32, 12u32);
    let e = engine();
    let mut src = picture(w as usize, h as usize);
    let mut out = vec![0u8; src.len()];
    assert_eq!(unsafe { ptgrm_engine_set_strength(e, 0.0) }, PTGRM_OK);
    let (i, o) = (rgb(&mut src, w, h), rgb(&mut out, w, h));
    assert_eq!(process(e, &i, &o), PTGRM_OK, "{}", last_error());
    assert_eq!(out, picture(w as usize, h as usize));

    let calls: [(&str, &dyn Fn() -> ptgrm_status); 4] = [
        ("strength", &|| unsafe { ptgrm_engine_set_strength(e, 1.5) }),
        ("strength", &|| unsafe { ptgrm_engine_set_strength(e, f32::NAN) }),
        ("interval", &|| unsafe { ptgrm_engine_set_prior_interval(e, 0) }),
        ("smoothing", &|| unsafe { ptgrm_engine_set_prior_smoothing(e, 1.5) }),
    ];
    for (what, call) in calls {
        assert_eq!(call(), PTGRM_ERR_INVALID_ARGUMENT, "{what}");
        assert!(last_error().to_lowercase().contains(what), "{what}: {}", last_error());
    }
    assert_eq!(unsafe { ptgrm_engine_set_prior_interval(e, 4) }, PTGRM_OK);
    assert_eq!(unsafe { ptgrm_engine_set_prior_smoothing(e, 0.5) }, PTGRM_OK);
    let null_calls: [&dyn Fn() -> ptgrm_status; 4] = [
        &|| unsafe { ptgrm_engine_set_strength(null_mut(), 0.5) },
        &|| unsafe { ptgrm_engine_set_prior_interval(null_mut(), 1) },
        &|| unsafe { ptgrm_engine_set_prior_smoothing(null_mut(), 0.0) },
        &|| unsafe { ptgrm_engine_reset_prior(null_mut()) },
    ];
    for call in null_calls {
        assert_eq!(call(), PTGRM_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("engine is NULL"), "{}", last_error());
    }
    unsafe { ptgrm_engine_destroy(e) };
}

/// Every malformed call fails with PTGRM_ERR_INVALID_ARGUMENT and a message naming the problem.
#[test]
fn bad_images_are_rejected_with_reasons() {
    let e = engine();
    let (w, h) = (8u32, 6u32);
    let mut a = picture(w as usize, h as usize);
    let mut b = vec![0u8; a.len()];
    let good_in = rgb(&mut a, w, h);
    let good_out = rgb(&mut b, w, h);
    let mut yuv = vec![0u8; 200];

    let mut cases: Vec<(&'static str, ptgrm_status, String)> = Vec::new();
    let mut check = |name: &'static str, st: ptgrm_status| cases.push((name, st, last_error()));
    check("NULL engine", process(null_mut(), &good_in, &good_out));
    check("NULL input", unsafe { ptgrm_engine_process(e, null(), &good_out) });
    check("NULL output", unsafe { ptgrm_engine_process(e, &good_in, null()) });
    // Each malformed descriptor points into its own live buffer.
    let (mut a2, mut a3, mut a4, mut a5, mut b2) = (a.clone(), a.clone(), a.clone(), a.clone(), b.clone());
    let mut zero = rgb(&mut a2, w, h);
    (zero.width, zero.height) = (0, 0);
    check("0x0", process(e, &zero, &good_out));
    let narrow = rgb_strided(&mut b2, w, h, w as usize * 3 - 1);
    check("stride", process(e, &good_in, &narrow));
    let mut unknown = rgb(&mut a3, w, h);
    unknown.format = 77;
    check("format", process(e, &unknown, &good_out));
    let mut null_plane = rgb(&mut a4, w, h);
    null_plane.planes[0] = null_mut();
    check("NULL plane", process(e, &null_plane, &good_out));
    let mut small = vec![0u8; 3 * 4 * 3];
    check("size mismatch", process(e, &good_in, &rgb(&mut small, 4, 3)));
    let mut huge = rgb(&mut a5, w, h);
    huge.strides[0] = usize::MAX / 2;
    check("overflow", process(e, &huge, &good_out));
    let mut i420 = ptgrm_image {
        format: PTGRM_FORMAT_I420,
        width: 8,
        height: 6,
        yuv_color: 9,
        planes: [yuv.as_mut_ptr().cast(), unsafe { yuv.as_mut_ptr().add(48) }.cast(), unsafe { yuv.as_mut_ptr().add(60) }.cast()],
        strides: [8, 4, 4],
    };
    check("yuv color", process(e, &good_in, &i420));
    i420.yuv_color = PTGRM_YUV_BT601_FULL;
    i420.planes[2] = i420.planes[1];
    check("overlapping planes", process(e, &good_in, &i420));
    check("both outputs NULL", unsafe { ptgrm_engine_process_outputs(e, &good_in, null(), null()) });

    let expect = [
        ("NULL engine", "engine is NULL"),
        ("NULL input", "input image is NULL"),
        ("NULL output", "output image is NULL"),
        ("0x0", "size 0x0 is empty"),
        ("stride", "stride 23 is less than the row length 24"),
        ("format", "unknown pixel format code 77"),
        ("NULL plane", "plane 0 of RGB is NULL"),
        ("size mismatch", "4x3"),
        ("overflow", "overflows"),
        ("yuv color", "unknown YUV color code 9"),
        ("overlapping planes", "output planes 1 and 2 overlap"),
        ("both outputs NULL", "both NULL"),
    ];
    for ((name, st, msg), (ename, needle)) in cases.iter().zip(expect) {
        assert_eq!(*name, ename);
        assert_eq!(*st, PTGRM_ERR_INVALID_ARGUMENT, "{name}: {msg}");
        assert!(msg.contains(needle), "{name}: message {msg:?} lacks {needle:?}");
    }
    assert_eq!(cases.len(), expect.len());
    // The engine still works after all that.
    assert_eq!(process(e, &good_in, &good_out), PTGRM_OK, "{}", last_error());
    unsafe { ptgrm_engine_destroy(e) };
}

#[test]
fn odd_sizes_and_yuv_outputs_work() {
    let e = engine();
    for (w, h) in [(1u32, 1u32), (3, 5)] {
        let mut a = picture(w as usize, h as usize);
        let mut b = vec![0u8; a.len()];
        let (i, o) = (rgb(&mut a, w, h), rgb(&mut b, w, h));
        assert_eq!(process(e, &i, &o), PTGRM_OK, "{w}x{h}: {}", last_error());
    }
    // RGB in, NV12 out, described with ptgrm_image_wrap; refined and base at once.
    let (w, h) = (10u32, 6u32);
    let mut a = picture(w as usize, h as usize);
    let i = rgb(&mut a, w, h);
    let mut size = 0;
    assert_eq!(unsafe { ptgrm_image_buffer_size(PTGRM_FORMAT_NV12, w, h, &mut size) }, PTGRM_OK);
    assert_eq!(size, 60 + 30);
    let (mut refined, mut base) = (vec![0u8; size], vec![0u8; size]);
    let mut r = unsafe { std::mem::zeroed::<ptgrm_image>() };
    let mut bimg = unsafe { std::mem::zeroed::<ptgrm_image>() };
    unsafe {
        assert_eq!(ptgrm_image_wrap(&mut r, PTGRM_FORMAT_NV12, w, h, refined.as_mut_ptr().cast(), size), PTGRM_OK);
        assert_eq!(ptgrm_image_wrap(&mut bimg, PTGRM_FORMAT_NV12, w, h, base.as_mut_ptr().cast(), size), PTGRM_OK);
        assert_eq!(r.planes[1], refined.as_mut_ptr().add(60).cast::<c_void>());
        assert_eq!(r.strides[..2], [10, 10]);
        assert_eq!(ptgrm_engine_process_outputs(e, &i, &r, &bimg), PTGRM_OK, "{}", last_error());
    }
    assert!(refined.iter().any(|&v| v != 0) && base.iter().any(|&v| v != 0));
    unsafe { ptgrm_engine_destroy(e) };
}

#[test]
fn image_helpers_validate_their_arguments() {
    let mut size = 0;
    unsafe {
        assert_eq!(ptgrm_image_buffer_size(PTGRM_FORMAT_I420, 5, 3, &mut size), PTGRM_OK);
        assert_eq!(size, 15 + 2 * 3 * 2);
        assert_eq!(ptgrm_image_buffer_size(42, 5, 3, &mut size), PTGRM_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("unknown pixel format code 42"));
        assert_eq!(ptgrm_image_buffer_size(PTGRM_FORMAT_RGB8, 5, 3, null_mut()), PTGRM_ERR_INVALID_ARGUMENT);
        let mut buf = [0u8; 44];
        let mut img = std::mem::zeroed::<ptgrm_image>();
        assert_eq!(ptgrm_image_wrap(&mut img, PTGRM_FORMAT_RGB8, 5, 3, buf.as_mut_ptr().cast(), 44), PTGRM_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("needs 45 bytes, data_len is 44"), "{}", last_error());
        assert_eq!(ptgrm_image_wrap(&mut img, PTGRM_FORMAT_RGB8, 0, 3, buf.as_mut_ptr().cast(), 44), PTGRM_ERR_INVALID_ARGUMENT);
        assert_eq!(ptgrm_image_wrap(null_mut(), PTGRM_FORMAT_RGB8, 1, 1, buf.as_mut_ptr().cast(), 44), PTGRM_ERR_INVALID_ARGUMENT);
        assert_eq!(ptgrm_image_wrap(&mut img, PTGRM_FORMAT_RGB8, 1, 1, null_mut(), 44), PTGRM_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("data is NULL"));
    }
}

/// Raw engine pointer carried across threads (the C rules allow it: one thread at a time).
#[derive(Clone, Copy)]
struct SendPtr(*mut ptgrm_engine);
unsafe impl Send for SendPtr {}
// Shared only to hand the same handle to a prober thread, which the test expects to be refused.
unsafe impl Sync for SendPtr {}

fn run_picture(e: *mut ptgrm_engine, w: u32, h: u32) -> Vec<u8> {
    let mut src = picture(w as usize, h as usize);
    let mut out = vec![0u8; src.len()];
    let (i, o) = (rgb(&mut src, w, h), rgb(&mut out, w, h));
    assert_eq!(process(e, &i, &o), PTGRM_OK, "{}", last_error());
    out
}

#[test]
fn engines_on_several_threads_run_concurrently_and_agree() {
    let (w, h) = (40u32, 30u32);
    let e = engine();
    let expected = run_picture(e, w, h);
    unsafe { ptgrm_engine_destroy(e) };
    let barrier = std::sync::Barrier::new(4);
    let results: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let e = engine();
                    barrier.wait();
                    let out: Vec<Vec<u8>> = (0..3).map(|_| run_picture(e, w, h)).collect();
                    unsafe { ptgrm_engine_destroy(e) };
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.len(), 12);
    for r in results {
        assert_eq!(r, expected);
    }
}

#[test]
fn an_engine_may_move_between_threads() {
    let e = SendPtr(engine());
    let first = std::thread::spawn(move || run_picture({ e }.0, 12, 8)).join().unwrap();
    let second = run_picture(e.0, 12, 8);
    assert_eq!(first, second);
    std::thread::spawn(move || unsafe { ptgrm_engine_destroy({ e }.0) }).join().unwrap();
}

#[test]
fn concurrent_calls_on_one_engine_are_refused_not_undefined() {
    let e = SendPtr(engine());
    let done = std::sync::atomic::AtomicBool::new(false);
    let (busy_seen, worker_frames) = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let e: SendPtr = e; // whole-struct capture (precise capture would take the raw field)
            let mut frames = 0;
            // Large frames keep the engine busy most of the time; retry if the prober held it.
            while frames < 40 && !(frames >= 3 && done.load(std::sync::atomic::Ordering::Relaxed)) {
                let mut src = picture(256, 192);
                let mut out = vec![0u8; src.len()];
                let (i, o) = (rgb(&mut src, 256, 192), rgb(&mut out, 256, 192));
                match process(e.0, &i, &o) {
                    PTGRM_OK => frames += 1,
                    st => assert!(st == PTGRM_ERR_INVALID_ARGUMENT && last_error().contains("in use"), "{}", last_error()),
                }
            }
            frames
        });
        let mut busy = 0;
        while busy < 3 && !worker.is_finished() {
            match unsafe { ptgrm_engine_set_strength(e.0, 1.0) } {
                PTGRM_OK => {}
                st => {
                    assert_eq!(st, PTGRM_ERR_INVALID_ARGUMENT);
                    assert!(last_error().contains("in use by another thread"), "{}", last_error());
                    busy += 1;
                }
            }
            std::hint::spin_loop();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (busy, worker.join().unwrap())
    });
    assert!(busy_seen >= 3, "the prober never found the engine busy while {worker_frames} frames ran");
    assert!(worker_frames >= 3);
    unsafe { ptgrm_engine_destroy(e.0) };
}

#[test]
fn last_error_is_per_thread() {
    assert_eq!(unsafe { ptgrm_engine_set_strength(null_mut(), 0.5) }, PTGRM_ERR_INVALID_ARGUMENT);
    let mine = last_error();
    assert!(mine.contains("engine is NULL"));
    let other = std::thread::spawn(|| {
        let fresh = last_error();
        let mut size = 0;
        let st = unsafe { ptgrm_image_buffer_size(1234, 1, 1, &mut size) };
        (fresh, st, last_error())
    })
    .join()
    .unwrap();
    assert_eq!(other.0, "", "a new thread starts with no error");
    assert_eq!(other.1, PTGRM_ERR_INVALID_ARGUMENT);
    assert!(other.2.contains("1234"));
    assert_eq!(last_error(), mine, "another thread's failure must not change this thread's message");
}

#[test]
fn provider_and_log_follow_a_first_frame_fallback() {
    // A GPU provider that opens but fails its first frame (the fault-injection seam stands a
    // CPU session in for TensorRT): after that frame the engine runs elsewhere, and the C ABI
    // must report where, not what it saw at creation.
    let dir = support::scratch_dir("fallback-bundle");
    for entry in std::fs::read_dir(bundle_dir()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    ptgrm::fault::fail_first_frame(&dir, ptgrm::Provider::TensorRt);
    let mut o = options();
    o.provider = PTGRM_PROVIDER_AUTO;
    o.threads = 1;
    let cdir = CString::new(dir.to_str().unwrap()).unwrap();
    let mut e = null_mut();
    assert_eq!(unsafe { ptgrm_engine_create(cdir.as_ptr(), &o, &mut e) }, PTGRM_OK, "{}", last_error());
    let active = |e| {
        let mut p = PTGRM_PROVIDER_AUTO;
        assert_eq!(unsafe { ptgrm_engine_active_provider(e, &mut p) }, PTGRM_OK);
        p
    };
    assert_eq!(active(e), PTGRM_PROVIDER_TENSORRT);
    let log_before = unsafe { ptgrm_engine_provider_log(e) };
    assert_eq!(unsafe { CStr::from_ptr(log_before) }.to_str().unwrap(), "");

    let (w, h) = (40u32, 24u32);
    let mut pixels = picture(w as usize, h as usize);
    let mut out = vec![0u8; pixels.len()];
    let (input, output) = (rgb(&mut pixels, w, h), rgb(&mut out, w, h));
    assert_eq!(unsafe { ptgrm_engine_process(e, &input, &output) }, PTGRM_OK, "{}", last_error());

    assert_ne!(active(e), PTGRM_PROVIDER_TENSORRT);
    let log = unsafe { CStr::from_ptr(ptgrm_engine_provider_log(e)) }.to_str().unwrap().to_owned();
    assert!(log.contains("tensorrt failed on the first frame"), "{log}");
    // The pointer handed out before the fallback is still valid (documented: until destroy).
    assert_eq!(unsafe { CStr::from_ptr(log_before) }.to_str().unwrap(), "");
    // Later frames run on the new provider without further changes.
    assert_eq!(unsafe { ptgrm_engine_process(e, &input, &output) }, PTGRM_OK, "{}", last_error());
    assert_eq!(unsafe { CStr::from_ptr(ptgrm_engine_provider_log(e)) }.to_str().unwrap(), log);
    unsafe { ptgrm_engine_destroy(e) };
    ptgrm::fault::clear(&dir);
}
