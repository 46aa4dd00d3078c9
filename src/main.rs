fn main() {
    std::process::exit(perch::cli::main());
}
