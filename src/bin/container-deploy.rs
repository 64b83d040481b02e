//! `container-deploy ARGS`: exactly `berth deploy ARGS`.

fn main() {
    std::process::exit(berth::run(
        berth::Program::ContainerDeploy,
        std::env::args_os(),
    ));
}
