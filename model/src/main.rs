//! `raftcheck`: the model checker's command line (filled by the model issue).

fn main() {
    eprintln!("raftcheck: the model checker is not built yet");
    std::process::exit(2);
}
