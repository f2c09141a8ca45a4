// Enhance an image file through the RAII wrapper, optionally on several engines at once.
//
//   c++ -std=c++11 -o ptgrm-enhance-cpp enhance.cpp ../c/netpbm.c -I../c $(pkg-config --cflags --libs ptgrm) -pthread
//   ./ptgrm-enhance-cpp [--model DIR] [--threads N] IN REFINED_OUT [BASE_OUT]
//
// IN is a binary PGM/PPM/PAM file. REFINED_OUT gets the refined image, BASE_OUT (optional) the
// base restorer's output. With --threads N, N engines restore the same image concurrently, one per
// thread (the library's threading rule), and the program checks that they agree.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "netpbm.h"
#include "ptgrm.hpp"

namespace {

struct Netpbm {
    netpbm_image img;
    explicit Netpbm(const std::string &path) {
        char err[256];
        if (netpbm_read(path.c_str(), &img, err, sizeof err)) throw std::runtime_error(err);
    }
    ~Netpbm() { netpbm_free(&img); }
    Netpbm(const Netpbm &) = delete;
    Netpbm &operator=(const Netpbm &) = delete;
    std::size_t size() const { return std::size_t(img.width) * img.height * img.channels; }
    ptgrm_pixel_format format() const {
        return img.channels == 1 ? PTGRM_FORMAT_GRAY8 : img.channels == 3 ? PTGRM_FORMAT_RGB8 : PTGRM_FORMAT_RGBA8;
    }
};

void save(const Netpbm &like, std::vector<unsigned char> &pixels, const std::string &path) {
    netpbm_image out = like.img;
    out.pixels = pixels.data();
    char err[256];
    if (netpbm_write(path.c_str(), &out, err, sizeof err)) throw std::runtime_error(err);
}

// Restores `in` on a fresh engine; the engine is created, used and destroyed on the calling thread.
std::vector<unsigned char> restore(const std::string &model, Netpbm &in, std::vector<unsigned char> *base,
                                   std::string *provider = nullptr) {
    ptgrm::Engine engine(model, ptgrm::Options().threads(1));
    if (provider) *provider = engine.active_provider_name();
    std::vector<unsigned char> refined(in.img.pixels, in.img.pixels + in.size());
    ptgrm_image src = ptgrm::wrap(in.format(), in.img.width, in.img.height, in.img.pixels, in.size());
    ptgrm_image dst = ptgrm::wrap(in.format(), in.img.width, in.img.height, refined.data(), refined.size());
    if (base) {
        base->assign(in.img.pixels, in.img.pixels + in.size());
        ptgrm_image b = ptgrm::wrap(in.format(), in.img.width, in.img.height, base->data(), base->size());
        engine.process(src, &dst, &b);
    } else {
        engine.process(src, dst);
    }
    return refined;
}

}  // namespace

int main(int argc, char **argv) {
    std::string model;
    std::vector<std::string> files;
    unsigned threads = 1;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--model" && i + 1 < argc) {
            model = argv[++i];
        } else if (a == "--threads" && i + 1 < argc) {
            threads = unsigned(std::max(1, std::atoi(argv[++i])));
        } else {
            files.push_back(a);
        }
    }
    if (files.size() < 2 || files.size() > 3) {
        std::cerr << "usage: " << argv[0] << " [--model DIR] [--threads N] IN REFINED_OUT [BASE_OUT]\n";
        return 2;
    }
    try {
        Netpbm in(files[0]);
        std::vector<unsigned char> base;
        std::string provider;
        std::vector<unsigned char> refined = restore(model, in, files.size() == 3 ? &base : nullptr, &provider);

        if (threads > 1) {
            std::vector<std::vector<unsigned char>> results(threads);
            std::vector<std::string> errors(threads);
            std::vector<std::thread> pool;
            for (unsigned t = 0; t < threads; t++) {
                pool.emplace_back([&, t] {
                    try {
                        results[t] = restore(model, in, nullptr);
                    } catch (const std::exception &e) {
                        errors[t] = e.what();
                    }
                });
            }
            for (auto &th : pool) th.join();
            int worst = 0;
            for (unsigned t = 0; t < threads; t++) {
                if (!errors[t].empty()) throw std::runtime_error("thread " + std::to_string(t) + ": " + errors[t]);
                for (std::size_t i = 0; i < refined.size(); i++)
                    worst = std::max(worst, std::abs(int(results[t][i]) - int(refined[i])));
            }
            std::cout << threads << " engines on " << threads << " threads agree with the first run (max difference "
                      << worst << ")\n";
            if (worst > 1) return 1;
        }

        save(in, refined, files[1]);
        if (files.size() == 3) save(in, base, files[2]);
        std::cout << "ptgrm " << ptgrm::version() << ": " << in.img.width << "x" << in.img.height << " on " << provider
                  << "\n";
    } catch (const ptgrm::Error &e) {
        std::cerr << "ptgrm-enhance-cpp: " << e.what() << " (status " << int(e.status()) << ")\n";
        return 1;
    } catch (const std::exception &e) {
        std::cerr << "ptgrm-enhance-cpp: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
