// RAII C++ wrapper over the libptgrm C interface (header-only; C++11).
//
// ptgrm::Engine owns a ptgrm_engine and destroys it; failures throw ptgrm::Error carrying the
// status and the library's message. Thread rules are the C library's: one engine per thread at a
// time, any number of engines concurrently.
#ifndef PTGRM_HPP
#define PTGRM_HPP

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

#include "ptgrm.h"

namespace ptgrm {

class Error : public std::runtime_error {
public:
    Error(ptgrm_status status, const std::string &what) : std::runtime_error(what), status_(status) {}
    ptgrm_status status() const noexcept { return status_; }

private:
    ptgrm_status status_;
};

inline void check(ptgrm_status status, const char *call) {
    if (status != PTGRM_OK) throw Error(status, std::string(call) + ": " + ptgrm_last_error());
}

inline std::string version() { return ptgrm_version(); }

// Engine options with the library's defaults; set the public `raw` fields or use the setters.
struct Options {
    ptgrm_options raw;
    Options() { check(ptgrm_options_init(&raw, sizeof raw), "ptgrm_options_init"); }
    Options &provider(ptgrm_provider p) { raw.provider = p; return *this; }
    Options &strength(float s) { raw.strength = s; return *this; }
    Options &threads(unsigned n) { raw.threads = n; return *this; }
    Options &tile(unsigned size, unsigned overlap) { raw.tile_size = size; raw.tile_overlap = overlap; return *this; }
    Options &prior(unsigned interval, float smoothing) {
        raw.prior_interval = interval;
        raw.prior_smoothing = smoothing;
        return *this;
    }
};

// Describes a tightly packed frame in caller memory (the memory is not owned).
inline ptgrm_image wrap(ptgrm_pixel_format format, unsigned width, unsigned height, void *data, std::size_t len) {
    ptgrm_image img;
    check(ptgrm_image_wrap(&img, format, width, height, data, len), "ptgrm_image_wrap");
    return img;
}

inline std::size_t buffer_size(ptgrm_pixel_format format, unsigned width, unsigned height) {
    std::size_t n = 0;
    check(ptgrm_image_buffer_size(format, width, height, &n), "ptgrm_image_buffer_size");
    return n;
}

class Engine {
public:
    // An empty bundle_dir selects the library's default model.
    explicit Engine(const std::string &bundle_dir, const Options &options = Options()) {
        ptgrm_engine *raw = nullptr;
        check(ptgrm_engine_create(bundle_dir.empty() ? nullptr : bundle_dir.c_str(), &options.raw, &raw),
              "ptgrm_engine_create");
        handle_.reset(raw);
    }

    void process(const ptgrm_image &input, const ptgrm_image &output) {
        check(ptgrm_engine_process(handle_.get(), &input, &output), "ptgrm_engine_process");
    }
    // Either output may be null.
    void process(const ptgrm_image &input, const ptgrm_image *refined, const ptgrm_image *base) {
        check(ptgrm_engine_process_outputs(handle_.get(), &input, refined, base), "ptgrm_engine_process_outputs");
    }

    void set_strength(float s) { check(ptgrm_engine_set_strength(handle_.get(), s), "ptgrm_engine_set_strength"); }
    void set_prior_interval(unsigned n) {
        check(ptgrm_engine_set_prior_interval(handle_.get(), n), "ptgrm_engine_set_prior_interval");
    }
    void set_prior_smoothing(float a) {
        check(ptgrm_engine_set_prior_smoothing(handle_.get(), a), "ptgrm_engine_set_prior_smoothing");
    }
    void reset_prior() { check(ptgrm_engine_reset_prior(handle_.get()), "ptgrm_engine_reset_prior"); }

    ptgrm_provider active_provider() const {
        ptgrm_provider p = PTGRM_PROVIDER_AUTO;
        check(ptgrm_engine_active_provider(handle_.get(), &p), "ptgrm_engine_active_provider");
        return p;
    }
    std::string active_provider_name() const { return ptgrm_provider_name(active_provider()); }
    std::string provider_log() const { return ptgrm_engine_provider_log(handle_.get()); }

    ptgrm_engine *get() const noexcept { return handle_.get(); }

private:
    struct Destroy {
        void operator()(ptgrm_engine *e) const noexcept { ptgrm_engine_destroy(e); }
    };
    std::unique_ptr<ptgrm_engine, Destroy> handle_;
};

}  // namespace ptgrm

#endif
