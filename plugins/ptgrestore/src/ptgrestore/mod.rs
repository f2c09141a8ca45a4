//! The `ptgrestore` element: a `GstVideoFilter` that runs every frame through a ptgrm engine.

use gst::glib;
use gst::prelude::*;

mod imp;
mod latency;
mod provider;
mod settings;
mod swap;
mod video;

pub use settings::ProviderChoice;

glib::wrapper! {
    pub struct PtgRestore(ObjectSubclass<imp::PtgRestore>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // The enum appears in the element's properties; documentation tools need to find it.
    ProviderChoice::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(Some(plugin), "ptgrestore", gst::Rank::NONE, PtgRestore::static_type())
}
