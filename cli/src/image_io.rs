//! PNG/JPEG files <-> packed RGB8 buffers, with errors that name the file.

use image::{ImageFormat, ImageReader, RgbImage};
use ptgrm::{Error, ErrorKind, Result};
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;

/// JPEG quality for written files: high enough that compression does not mask the restoration.
const JPEG_QUALITY: u8 = 95;

fn io_error(message: String) -> Error {
    Error::new(ErrorKind::Io, message)
}

/// Whether the file name says PNG or JPEG (used to pick image files out of a directory).
pub fn is_image_file(path: &Path) -> bool {
    output_format(path).is_ok()
}

/// Reads a PNG or JPEG file (format from its contents, not its name) as 8-bit RGB. Grey and
/// 16-bit images are converted; alpha is dropped.
pub fn read_rgb8(path: &Path) -> Result<RgbImage> {
    let mut head = [0u8; 16];
    let mut file = File::open(path).map_err(|e| io_error(format!("cannot open image {}: {e}", path.display())))?;
    let n = read_up_to(&mut file, &mut head).map_err(|e| io_error(format!("cannot read image {}: {e}", path.display())))?;
    let format = match image::guess_format(&head[..n]) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        _ => return Err(Error::invalid(format!("{} is not a PNG or JPEG image", path.display()))),
    };
    let mut reader = ImageReader::open(path).map_err(|e| io_error(format!("cannot open image {}: {e}", path.display())))?;
    reader.set_format(format);
    let image = reader.decode().map_err(|e| Error::invalid(format!("cannot decode image {}: {e}", path.display())))?;
    Ok(image.to_rgb8())
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The format to write, from the output name's extension.
pub fn output_format(path: &Path) -> Result<ImageFormat> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png") => Ok(ImageFormat::Png),
        Some("jpg" | "jpeg") => Ok(ImageFormat::Jpeg),
        _ => Err(Error::invalid(format!("output {} must end in .png, .jpg or .jpeg", path.display()))),
    }
}

/// Fails early (before any inference) when the output cannot be written where asked:
/// unknown extension, missing directory, or a directory in the way.
pub fn check_writable_output(path: &Path) -> Result<ImageFormat> {
    let format = output_format(path)?;
    if path.is_dir() {
        return Err(io_error(format!("output {} is a directory", path.display())));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(io_error(format!("cannot write {}: directory {} does not exist", path.display(), parent.display())));
    }
    Ok(format)
}

pub fn write_rgb8(path: &Path, image: &RgbImage) -> Result<()> {
    let format = output_format(path)?;
    let file = File::create(path).map_err(|e| io_error(format!("cannot write {}: {e}", path.display())))?;
    let mut out = BufWriter::new(file);
    let written = match format {
        ImageFormat::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode_image(image),
        _ => image.write_to(&mut out, format),
    };
    written.map_err(|e| io_error(format!("cannot write {}: {e}", path.display())))?;
    out.into_inner().map_err(|e| io_error(format!("cannot write {}: {}", path.display(), e.error())))?;
    Ok(())
}
