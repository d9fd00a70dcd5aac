//! A small, deterministic robustness driver for the parsers, run by `cargo test`: random bytes,
//! every truncation of the seeds, and seeds with random bytes flipped, inserted or removed. The
//! generator is a fixed-seed xorshift, so a failure is reproducible; `CODEX_BOX_FUZZ_ITERS`
//! raises the iteration count.

/// Calls `f` on `iters` generated inputs plus every prefix of every seed.
pub fn run(iters: usize, mut f: impl FnMut(&[u8]), seeds: &[Vec<u8>]) {
    let iters = std::env::var("CODEX_BOX_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(iters);
    for seed in seeds {
        for n in 0..=seed.len() {
            f(&seed[..n]);
        }
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..iters {
        let input: Vec<u8> = match (i % 3, seeds.is_empty()) {
            (0, _) | (_, true) => {
                let len = (next() % 600) as usize;
                (0..len).map(|_| next() as u8).collect()
            }
            _ => {
                let mut s = seeds[(next() as usize) % seeds.len()].clone();
                for _ in 0..1 + next() % 8 {
                    if s.is_empty() {
                        break;
                    }
                    let at = (next() as usize) % s.len();
                    match next() % 4 {
                        0 => s[at] = next() as u8,
                        1 => s[at] ^= 1 << (next() % 8),
                        2 => s.insert(at, next() as u8),
                        _ => {
                            s.remove(at);
                        }
                    }
                }
                let cut = (next() as usize) % (s.len() + 1);
                if next() % 2 == 0 {
                    s.truncate(cut);
                }
                s
            }
        };
        f(&input);
    }
}
