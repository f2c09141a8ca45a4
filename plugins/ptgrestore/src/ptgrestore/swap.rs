//! `model` set while the element runs: the new engine is loaded on the thread that sets the
//! property (the application's, which blocks meanwhile) and put in place under the state lock,
//! which the streaming thread holds for one frame at a time, so the switch falls between two
//! frames and none is dropped. A model that fails to load leaves the old one running.

use super::imp::{CAT, PtgRestore, lock};
use super::latency::LatencyMeter;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

impl PtgRestore {
    pub(super) fn swap_model(&self, model: Option<PathBuf>) {
        let serial = lock(&self.swapping);
        let mut settings = lock(&self.settings).clone();
        let running = settings.model.clone().unwrap_or_default();
        let Some(model) = model else {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("model cannot be unset while running; still running {}", running.display())
            );
            return;
        };
        if model == running {
            gst::debug!(CAT, imp = self, "model {} already runs", model.display());
            return;
        }
        settings.model = Some(model.clone());
        let engine = match self.load_engine(&model, &settings) {
            Ok(engine) => engine,
            Err(e) => {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::OpenRead,
                    ("Cannot switch to model {}: {e}; still running {}", model.display(), running.display())
                );
                return;
            }
        };
        let running_messages = self.running_messages(&engine, settings.provider);
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            // Stopped while loading: the new model is the one the next start loads.
            lock(&self.settings).model = Some(model);
            drop((guard, serial));
            self.obj().notify("model");
            return;
        };
        let old = std::mem::replace(&mut state.engine, engine);
        // What the new engine was loaded with; newer live values follow before the next frame.
        state.applied = settings.live;
        let change = self.take_provider_change(state).map(|mut change| {
            if change.reason.is_empty() {
                change.reason = format!("model {} loaded on {}", model.display(), change.provider);
            }
            change
        });
        // Under the state lock, so no reader sees a model other than the one frames run on.
        lock(&self.settings).model = Some(model.clone());
        *lock(&self.latency) = LatencyMeter::default();
        // The new engine computes its prior on its first frame anyway.
        self.prior_stale.store(false, Ordering::Release);
        drop(guard);
        // Freeing the old sessions takes a while: not under the lock the streaming thread needs.
        drop(old);
        // Handlers of the messages below may set model again.
        drop(serial);
        gst::info!(CAT, imp = self, "switched to {}", model.display());
        self.obj().notify("model");
        running_messages();
        if let Some(change) = change {
            self.announce_provider_change(change);
        }
    }
}
