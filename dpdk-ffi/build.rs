//! Finds the system DPDK with `pkg-config libdpdk`, generates bindings with bindgen into
//! `OUT_DIR/bindings.rs`, and compiles `src/shim.c` (exported bodies for static-inline
//! functions) with the same compiler flags DPDK asks for (`-march`, `-include rte_config.h`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

const NOT_FOUND: &str = "DPDK not found: run scripts/setup.sh (apt-get install libdpdk-dev)";

/// Runs `pkg-config <args> libdpdk` and splits the output into flags.
fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = match Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("{NOT_FOUND} (could not run pkg-config: {e})"),
    };
    if !out.status.success() {
        panic!(
            "{NOT_FOUND} (pkg-config {} libdpdk: {})",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");

    let version = pkg_config(&["--modversion"]).join("");
    let cflags = pkg_config(&["--cflags"]);
    let libs = pkg_config(&["--libs"]);
    println!("cargo:version={version}");

    // `-include rte_config.h` is two words; keep such pairs together for both consumers.
    let mut clang_args: Vec<String> = Vec::new();
    let mut include_dirs: Vec<String> = Vec::new();
    let mut it = cflags.iter();
    while let Some(flag) = it.next() {
        if flag == "-include" {
            if let Some(file) = it.next() {
                clang_args.push(flag.clone());
                clang_args.push(file.clone());
            }
        } else {
            if let Some(dir) = flag.strip_prefix("-I") {
                include_dirs.push(dir.to_owned());
            }
            clang_args.push(flag.clone());
        }
    }

    for flag in &libs {
        if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        } else if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        }
        // Other flags (`-Wl,--as-needed`) only trim NEEDED entries; rustc's own
        // link line works without them, and `rustc-link-arg` would not reach dependents.
    }
    for dir in &include_dirs {
        println!("cargo:include={dir}");
    }

    // The shim: compiled with DPDK's own cflags so inline bodies match the library.
    let mut build = cc::Build::new();
    build
        .file("src/shim.c")
        .include("src")
        .warnings(true)
        .opt_level(3);
    for flag in &clang_args {
        build.flag(flag);
    }
    build.compile("svr_dpdk_shim");

    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    // Match the workspace's rust-version (1.80): no `unsafe extern` blocks in the output.
    let target = bindgen::RustTarget::stable(80, 0)
        .unwrap_or_else(|e| panic!("bindgen does not know Rust 1.80: {e}"));
    let bindings = bindgen::Builder::default()
        .rust_target(target)
        .header("wrapper.h")
        .clang_args(&clang_args)
        .clang_arg("-Isrc")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("rte_.*|svr_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|rte_.*|RING_F_.*|SOCKET_ID_ANY|LCORE_ID_ANY|E_RTE_.*")
        // The errno values the safe layer maps to typed errors (from <errno.h>).
        .allowlist_var("EINVAL|ENODEV|ENOTSUP|ENOENT|EEXIST|ENOMEM|ENOSPC|EBUSY|EALREADY|EIO|EPERM")
        // Packed structs that contain aligned unions: Rust rejects them (E0588); we never
        // touch their fields, so bindgen emits them as opaque byte blobs.
        .opaque_type("rte_l2tpv2_combined_msg_hdr|rte_gtp_psc_generic_hdr|rte_arp_hdr|rte_arp_ipv4")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(true)
        .generate_comments(false)
        .generate()
        .unwrap_or_else(|e| panic!("bindgen failed on wrapper.h: {e}"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .unwrap_or_else(|e| panic!("writing bindings.rs: {e}"));
}
