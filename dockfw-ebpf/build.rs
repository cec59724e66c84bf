//! Rebuild the programs when the linker changes, fail early with a useful
//! message when it is missing, and pick the code generation the programs are
//! written for.

fn main() {
    match which::which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(error) => {
            println!(
                "cargo:warning=bpf-linker not found ({error}); run `cargo xtask setup` to install it"
            );
        }
    }
    // bpf-linker's default `--bpf-expand-memcpy-in-order` turns every memset
    // (zeroing a key's address, say) into a call to a byte loop, which costs
    // per packet and multiplies verifier work. Let LLVM expand them inline.
    println!("cargo:rustc-link-arg-bins=--disable-expand-memcpy-in-order");
}
