//! Steady-state frames must not allocate frame-sized buffers: after warm-up, the bytes the
//! process allocates per frame stay tiny and independent of the frame size. ONNX Runtime's own
//! C++ allocations (its arena) do not go through Rust's allocator; ort's small per-run
//! bookkeeping does, hence a bound rather than zero.

use ptgrm::frame::PixelFormat;
use ptgrm::{Engine, EngineOptions, FrameLayout, FrameMut, FrameRef, ProviderRequest};
use ptgrm_model::test_bundle::{TestBundleOptions, write_test_bundle};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        BYTES.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        BYTES.fetch_add(new, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_frames_allocate_no_frame_buffers() {
    let dir = std::env::temp_dir().join(format!("ptgrm-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_test_bundle(&dir, &TestBundleOptions::default()).unwrap();
    let opts = EngineOptions { provider: ProviderRequest::Cpu, threads: 1, ..Default::default() };
    let mut engine = Engine::load(&dir, &opts).unwrap();
    let (w, h) = (256, 192);
    let layout = FrameLayout::packed(PixelFormat::Nv12, w, h);
    let src = vec![100u8; layout.contiguous_len()];
    let mut out = vec![0u8; src.len()];
    let mut frame = |e: &mut Engine| {
        e.process(&FrameRef::contiguous(layout, &src).unwrap(), &mut FrameMut::contiguous(layout, &mut out).unwrap()).unwrap();
    };
    for _ in 0..3 {
        frame(&mut engine);
    }
    let before = BYTES.load(Ordering::Relaxed);
    let frames = 5;
    for _ in 0..frames {
        frame(&mut engine);
    }
    let per_frame = (BYTES.load(Ordering::Relaxed) - before) / frames;
    let frame_bytes = w * h * 3 * 4;
    assert!(per_frame < 16 * 1024, "{per_frame} bytes allocated per frame (one f32 frame is {frame_bytes})");
}
