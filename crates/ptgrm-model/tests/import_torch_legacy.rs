//! The legacy torch pickle reader on the real third-party checkpoints. Expected values come
//! from an independent reading of the same files (Python's pickle module with numpy, no torch).

mod import_support;

use ptgrm_model::import::state_dict::Tensor;
use ptgrm_model::import::torch_file;

fn sum(t: &Tensor) -> f64 {
    t.data.iter().map(|&v| v as f64).sum()
}

/// Elements as f64 (exact), to compare with the reference's printed doubles.
fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-5 * want.abs().max(1.0)
}

#[test]
fn reads_torchvision_mobilenet_v2_checkpoint() {
    let Some(path) = import_support::weights("mobilenet_v2-b0353104.pth") else { return };
    let sd = torch_file::load(&path).unwrap();
    assert_eq!(sd.entries.len(), 314);
    let w = sd.get_shaped("features.0.0.weight", &[32, 3, 3, 3]).unwrap();
    assert!(close(sum(w), -0.7730716340520303), "sum {}", sum(w));
    assert_eq!(wide(&w.data[..3]), [0.013185339979827404, -0.004321294371038675, 0.014823135919868946]);
    assert_eq!(*w.data.last().unwrap() as f64, 0.10798239707946777);
    let var = sd.get_shaped("features.17.conv.3.running_var", &[320]).unwrap();
    assert!(close(sum(var), 2.0396690806373954));
    let bias = sd.get_shaped("classifier.1.bias", &[1000]).unwrap();
    assert_eq!(bias.data[0] as f64, 0.04718802496790886);
    assert_eq!(*bias.data.last().unwrap() as f64, -0.003248195629566908);
    // an int64 (LongStorage) scalar
    let n = sd.get_shaped("features.5.conv.1.1.num_batches_tracked", &[]).unwrap();
    assert_eq!(n.data, vec![1431430.0]);
}

#[test]
fn reads_kair_ffdnet_checkpoint() {
    let Some(path) = import_support::weights("ffdnet_color.pth") else { return };
    let sd = torch_file::load(&path).unwrap();
    assert_eq!(sd.entries.len(), 24, "12 convs, weight and bias each");
    let head = sd.get_shaped("model.0.weight", &[96, 13, 3, 3]).unwrap();
    assert!(close(sum(head), -260.2007878458744), "sum {}", sum(head));
    assert_eq!(wide(&head.data[..3]), [0.13992586731910706, 0.14913389086723328, 0.12462834268808365]);
    assert_eq!(*head.data.last().unwrap() as f64, -0.24686139822006226);
    sd.get_shaped("model.22.weight", &[12, 96, 3, 3]).unwrap();
}

#[test]
fn truncated_real_checkpoint_is_a_clear_error() {
    let Some(path) = import_support::weights("ffdnet_color.pth") else { return };
    let bytes = std::fs::read(path).unwrap();
    let err = torch_file::parse(&bytes[..bytes.len() / 2]).unwrap_err().to_string();
    assert!(err.contains("too short") || err.contains("truncated"), "{err}");
}
