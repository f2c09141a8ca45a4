//! metrics.csv (one `train` row per step, one `val` row per validation) and the plot drawn
//! from it. On resume, rows past the checkpoint's step (written before a kill) are dropped so
//! the file never holds a step twice.

use crate::evaluate::Scores;
use crate::plot::{Series, write_plot};
use crate::run::{METRICS_FILE, PLOT_FILE};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

const HEADER: &str = "step,kind,loss,loss_base,loss_refined,lr,grad_norm,steps_per_s,psnr_input,psnr_base,psnr_refined,ssim_input,ssim_base,ssim_refined,wall_s";

pub struct MetricsLog {
    dir: PathBuf,
    file: Option<std::fs::File>,
    loss: Vec<(f64, f64)>,
    val_input: Vec<(f64, f64)>,
    val_base: Vec<(f64, f64)>,
    val_refined: Vec<(f64, f64)>,
}

impl MetricsLog {
    /// Opens the run's CSV keeping only rows with step <= `keep_until`.
    pub fn open(dir: &Path, keep_until: u64) -> Result<MetricsLog> {
        let path = dir.join(METRICS_FILE);
        let mut kept = vec![HEADER.to_string()];
        let mut log =
            MetricsLog { dir: dir.to_path_buf(), file: None, loss: vec![], val_input: vec![], val_base: vec![], val_refined: vec![] };
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split(',').collect();
                let Some(step) = f.first().and_then(|s| s.parse::<u64>().ok()) else { continue };
                if step > keep_until || f.len() != HEADER.split(',').count() {
                    continue;
                }
                log.absorb(&f);
                kept.push(line.to_string());
            }
        }
        let tmp = path.with_extension("csv.tmp");
        std::fs::write(&tmp, kept.join("\n") + "\n")?;
        std::fs::rename(&tmp, &path)?;
        log.file = Some(std::fs::OpenOptions::new().append(true).open(&path).with_context(|| format!("opening {}", path.display()))?);
        Ok(log)
    }

    fn absorb(&mut self, f: &[&str]) {
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok());
        let step = num(0).unwrap_or(0.0);
        match f.get(1) {
            Some(&"train") => {
                if let Some(l) = num(2) {
                    self.loss.push((step, l));
                }
            }
            Some(&"val") => {
                if let (Some(i), Some(b), Some(r)) = (num(8), num(9), num(10)) {
                    self.val_input.push((step, i));
                    self.val_base.push((step, b));
                    self.val_refined.push((step, r));
                }
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn train_row(&mut self, step: u64, loss: f64, lb: f64, lr_: f64, lr: f64, gnorm: f64, sps: f64, wall: f64) -> Result<()> {
        let line = format!("{step},train,{loss:.6},{lb:.6},{lr_:.6},{lr:.3e},{gnorm:.4},{sps:.3},,,,,,,{wall:.1}");
        writeln!(self.file.as_mut().expect("opened"), "{line}")?;
        self.absorb(&line.split(',').collect::<Vec<_>>());
        Ok(())
    }

    pub fn val_row(&mut self, step: u64, m: &Scores, wall: f64) -> Result<()> {
        let line = format!(
            "{step},val,,,,,,,{:.4},{:.4},{:.4},{:.5},{:.5},{:.5},{wall:.1}",
            m.psnr_input, m.psnr_base, m.psnr_refined, m.ssim_input, m.ssim_base, m.ssim_refined
        );
        writeln!(self.file.as_mut().expect("opened"), "{line}")?;
        self.absorb(&line.split(',').collect::<Vec<_>>());
        Ok(())
    }

    /// Redraws plot.png (loss smoothed over a window of ~1% of the steps).
    pub fn write_plot(&self, last_step: u64) -> Result<()> {
        let win = (self.loss.len() / 100).max(1);
        let smooth: Vec<(f64, f64)> =
            self.loss.chunks(win).map(|c| (c[c.len() - 1].0, c.iter().map(|p| p.1).sum::<f64>() / c.len() as f64)).collect();
        let series = [
            Series { label: "INPUT", colour: [150, 150, 150], points: &self.val_input },
            Series { label: "BASE F", colour: [30, 90, 220], points: &self.val_base },
            Series { label: "REFINED R", colour: [220, 40, 30], points: &self.val_refined },
        ];
        write_plot(&self.dir.join(PLOT_FILE), &smooth, &series, last_step as f64)
    }
}
