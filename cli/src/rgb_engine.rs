//! Running the engine on whole RGB8 images (restore and eval both need base and/or refined).

use image::RgbImage;
use ptgrm::{Engine, FrameLayout, FrameMut, FrameRef, PixelFormat, Result};

/// Which outputs to compute; the engine runs F (and R when `refined`) once for both.
#[derive(Clone, Copy)]
pub struct Wanted {
    pub refined: bool,
    pub base: bool,
}

pub struct Restored {
    pub refined: Option<RgbImage>,
    pub base: Option<RgbImage>,
}

pub fn restore_rgb(engine: &mut Engine, input: &RgbImage, wanted: Wanted) -> Result<Restored> {
    let (w, h) = (input.width() as usize, input.height() as usize);
    let layout = FrameLayout::packed(PixelFormat::Rgb8, w, h);
    let frame = FrameRef::contiguous(layout, input.as_raw())?;
    let blank = || RgbImage::new(input.width(), input.height());
    let mut refined = wanted.refined.then(blank);
    let mut base = wanted.base.then(blank);
    {
        let mut refined_frame = refined.as_mut().map(|img| FrameMut::contiguous(layout, img)).transpose()?;
        let mut base_frame = base.as_mut().map(|img| FrameMut::contiguous(layout, img)).transpose()?;
        engine.process_outputs(&frame, refined_frame.as_mut(), base_frame.as_mut())?;
    }
    Ok(Restored { refined, base })
}
