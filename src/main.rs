//! `berth`: parse, run, exit with the command's code.

fn main() {
    std::process::exit(berth::run(berth::Program::Berth, std::env::args_os()));
}
