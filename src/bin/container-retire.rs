//! `container-retire ARGS`: exactly `berth retire ARGS`.

fn main() {
    std::process::exit(berth::run(
        berth::Program::ContainerRetire,
        std::env::args_os(),
    ));
}
