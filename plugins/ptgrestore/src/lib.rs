//! GStreamer plugin `ptgrestore`: the PTG-RM prior-guided restoration engine as a video filter.
//!
//! `gst-launch-1.0 v4l2src ! ptgrestore ! autovideosink` — see docs/element.md.

use gst::glib;

mod ptgrestore;

pub use ptgrestore::{ProviderChoice, PtgRestore};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    ptgrestore::register(plugin)
}

gst::plugin_define!(
    ptgrestore,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    env!("CARGO_PKG_VERSION"),
    // GStreamer only knows a fixed set of licence names; the crate is MIT OR Apache-2.0.
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "https://github.com/ptgrm/ptgrm"
);
