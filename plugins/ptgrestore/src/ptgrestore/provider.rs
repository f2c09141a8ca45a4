//! The engine owns the execution provider and may leave it on the first frame (a GPU provider
//! that loaded but failed that frame); the element follows it, so `active-provider` always
//! names the provider frames run on, and tells the application when it changes.

use super::imp::{CAT, PtgRestore, State, lock};
use gst::prelude::*;
use gst::subclass::prelude::*;

/// A provider change to report once the state lock is released.
pub(super) struct ProviderChange {
    pub(super) provider: &'static str,
    pub(super) previous: &'static str,
    pub(super) reason: String,
}

impl PtgRestore {
    /// Compares the engine's provider with the reported one (an enum compare: runs after every
    /// frame) and, on a change, records the new one. Call with the state lock held.
    pub(super) fn take_provider_change(&self, state: &mut State) -> Option<ProviderChange> {
        let now = state.engine.active_provider();
        if now == state.reported {
            return None;
        }
        let previous = std::mem::replace(&mut state.reported, now);
        *lock(&self.active_provider) = Some(now.name());
        let reason = state.engine.provider_log().last().cloned().unwrap_or_default();
        Some(ProviderChange { provider: now.name(), previous: previous.name(), reason })
    }

    /// Tells the application about a provider change: notify::active-provider, an element
    /// message `ptgrm-provider-changed` and a WARNING. Call without the state lock: handlers
    /// may call back into the element.
    pub(super) fn announce_provider_change(&self, change: ProviderChange) {
        let ProviderChange { provider, previous, reason } = change;
        gst::warning!(CAT, imp = self, "provider changed from {previous} to {provider}: {reason}");
        let obj = self.obj();
        obj.notify("active-provider");
        let s = gst::Structure::builder("ptgrm-provider-changed")
            .field("provider", provider)
            .field("previous", previous)
            .field("reason", &reason)
            .build();
        // Fails only without a bus (element outside a pipeline): nobody to tell.
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
        gst::element_imp_warning!(self, gst::LibraryError::Init, ("Execution provider changed from {previous} to {provider}: {reason}"));
    }
}
