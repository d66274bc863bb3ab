//! [`Literals`]: the multi-pattern search of the prefilter, ASCII-case-insensitive, reporting
//! every pattern that occurs anywhere in a buffer (overlapping occurrences included).
//!
//! A q-gram filter, as in Suricata's hash-based matchers: each pattern of four bytes or more is
//! keyed by one of its 4-byte substrings (the one made of the least common bytes), which sets a
//! bit in a small bitmap (8 KiB: it stays in the L1 cache). The scan folds the buffer's bytes to
//! lower case into a rolling 32-bit window and tests one bit per position; only on a set bit are
//! the patterns of that key looked up and compared. Three-byte patterns are keyed by all
//! three bytes in the same bitmap, two-byte patterns use an exact 2-byte bitmap and one-byte
//! patterns a 256-entry table; a "gate" bitmap of the last two bytes of every key is tested
//! first, so most bytes cost a single bit test. The gate is indexed by the two bytes as they
//! are in the buffer (every case of a key's bytes has its bit), so the scan loads each pair
//! and tests its bit without folding or rolling anything; the bytes are folded only where a
//! bit is set. It costs a few
//! instructions per byte whatever the number of patterns, builds in microseconds and uses a
//! few KiB per pattern set, where an Aho-Corasick DFA over thousands of patterns takes megabytes
//! and misses the cache on most bytes.
//!
//! Most sets are small (a port's payload rules: a hundred patterns, a few hundred gate bits of
//! 65,536), so the gate test itself is the cost. Such a set tests the gate at every second
//! position only ([`Stride::Two`]): each pattern puts two consecutive pairs in the gate (the
//! last two of its key; a two-byte pattern its pair and every pair starting with its second
//! byte or ending with its first, whichever byte is rarer), so every occurrence has one of them
//! at a tested position, and a set bit looks for patterns ending there and one byte further.
//! The gate gets about twice as dense, which pays while it stays sparse.

/// ASCII lower-casing of every byte value.
const FOLD: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).to_ascii_lowercase();
        i += 1;
    }
    t
};

/// log2 of the number of bits of each filter bitmap.
const FILTER_BITS: u32 = 16;
const FILTER_WORDS: usize = 1 << (FILTER_BITS - 6);

fn hash4(w: u32) -> usize {
    (w.wrapping_mul(0x9E37_79B1) >> (32 - FILTER_BITS)) as usize
}

/// ASCII lower-casing of the four bytes of `w` at once ([`FOLD`] of each).
fn fold4(w: u32) -> u32 {
    let low = w & 0x7f7f_7f7f;
    // the bytes from `A` (0x41) up to `Z` (0x5a), below 0x80: their high bit set
    let upper = low.wrapping_add(0x3f3f_3f3f) & !low.wrapping_add(0x2525_2525) & !w & 0x8080_8080;
    w | upper >> 2
}

/// How common a byte is in traffic (higher: more common), to key patterns by their rarest part.
const fn commonness_of(b: u8) -> u32 {
    match b {
        0x00 | 0xff => 8,
        b' ' | b'\r' | b'\n' | b'/' | b'.' | b'=' | b'&' | b':' | b'-' | b'_' => 4,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' | b'h' | b'l' | b'c' | b'd' | b'p' | b'u' => 3,
        b'0'..=b'9' => 3,
        b'a'..=b'z' => 2,
        0x01..=0x08 => 2,
        _ => 1,
    }
}

/// [`commonness_of`] of every byte, looked up for each window of every pattern.
const COMMONNESS: [u32; 256] = {
    let mut t = [0; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = commonness_of(i as u8);
        i += 1;
    }
    t
};

fn commonness(b: u8) -> u32 {
    COMMONNESS[b as usize]
}

/// A set of byte patterns, searched ASCII-case-insensitively.
#[derive(Debug)]
pub struct Literals {
    /// Lower-cased pattern bytes; pattern `i` is `bytes[offsets[i]..offsets[i + 1]]`.
    bytes: Vec<u8>,
    offsets: Vec<u32>,
    /// Patterns of four bytes or more: (key, pattern, key offset in the pattern), by key.
    long: Vec<(u32, u32, u32)>,
    /// `None` when there is no long pattern (a set of rare buffers often has none, or only
    /// short ones: 8 KiB saved per bitmap).
    long_filter: Option<Box<[u64; FILTER_WORDS]>>,
    /// Patterns of three bytes: (the three bytes, pattern), by key. Their keys are in the
    /// long patterns' bitmap too (hashed the same way), so a common pair of bytes that starts
    /// one does not stop the scan on every occurrence.
    mid: Vec<(u32, u32)>,
    /// Patterns of two bytes: (the two bytes, pattern), by key.
    short: Vec<(u16, u32)>,
    short_filter: Option<Box<[u64; FILTER_WORDS]>>,
    /// With patterns of two bytes or more: the bitmap of the two-byte patterns and of the last
    /// two bytes of the other patterns' keys, indexed by the unfolded pair of bytes ([`pair`]),
    /// every case of them set, so most bytes cost one test (the other filters are only looked
    /// at when its bit is set).
    gate: Option<Box<[u64; FILTER_WORDS]>>,
    /// One-byte patterns per byte value.
    single: Vec<(u8, u32)>,
    /// The bytes of the one-byte patterns, every case of them (unfolded bytes).
    single_filter: [u64; 4],
    /// Whether the gate is tested at every position or every second one.
    stride: Stride,
    /// With [`Stride::Two`]: some two-byte pattern is in the gate by every pair starting with its
    /// second byte (found one position back from the tested pair).
    short_back: bool,
}

/// The positions at which [`Literals`] tests its gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stride {
    /// Every position.
    One,
    /// Every second position (the gate holds two pairs per pattern).
    Two,
}

/// A set whose two-pairs gate has at most this many bits set is scanned with [`Stride::Two`]:
/// half the tests, each hit looking at two positions, pays while hits are rare.
const STRIDE_TWO_MAX_BITS: u32 = 1 << (FILTER_BITS - 4);

fn bit(filter: &[u64; FILTER_WORDS], i: usize) -> bool {
    filter[(i >> 6) & (FILTER_WORDS - 1)] & (1u64 << (i & 63)) != 0
}

fn set_bit(filter: &mut [u64], i: usize) {
    if let Some(w) = filter.get_mut(i >> 6) {
        *w |= 1u64 << (i & 63);
    }
}

/// The gate's index of the unfolded bytes `a` then `b` (as one little-endian load reads them).
fn pair(a: u8, b: u8) -> usize {
    usize::from(u16::from_le_bytes([a, b]))
}

/// The byte values folding to the folded byte `f` (one or two).
fn cases(f: u8) -> impl Iterator<Item = u8> + Clone {
    let upper = f.to_ascii_uppercase();
    std::iter::once(f).chain((upper != f).then_some(upper))
}

/// Sets in `gate` the bits of every unfolded pair folding to the folded pair `k` (first byte in
/// the high half).
fn set_pair_cases(gate: &mut [u64], k: u16) {
    let [a, b] = k.to_be_bytes();
    for x in cases(a) {
        for y in cases(b) {
            set_bit(gate, pair(x, y));
        }
    }
}

impl Literals {
    /// Builds the set; pattern ids are the indexes in `patterns`. Empty patterns never match.
    /// The gate's stride is chosen by how sparse it is.
    pub fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Literals {
        Literals::build(patterns, None)
    }

    /// [`Literals::new`] with the gate's stride given (tests compare the two).
    pub fn with_stride<P: AsRef<[u8]>>(patterns: &[P], stride: Stride) -> Literals {
        Literals::build(patterns, Some(stride))
    }

    fn build<P: AsRef<[u8]>>(patterns: &[P], stride: Option<Stride>) -> Literals {
        let mut l = Literals {
            bytes: Vec::new(),
            offsets: vec![0],
            long: Vec::new(),
            long_filter: None,
            mid: Vec::new(),
            short: Vec::new(),
            short_filter: None,
            gate: None,
            single: Vec::new(),
            single_filter: [0; 4],
            stride: Stride::One,
            short_back: false,
        };
        for (id, p) in patterns.iter().enumerate() {
            let p = p.as_ref();
            let id = id as u32;
            l.bytes.extend(p.iter().map(|&b| FOLD[b as usize]));
            l.offsets.push(l.bytes.len() as u32);
            let folded = &l.bytes[l.bytes.len() - p.len()..];
            match folded.len() {
                0 => {}
                1 => l.single.push((folded[0], id)),
                2 => l.short.push((u16::from_be_bytes([folded[0], folded[1]]), id)),
                3 => l.mid.push((u32::from_be_bytes([0, folded[0], folded[1], folded[2]]), id)),
                n => {
                    // the 4-byte window of the least common bytes (first of equals)
                    // (a sliding sum over the windows)
                    let mut sum: u32 = folded[..4].iter().map(|&b| commonness(b)).sum();
                    let (mut off, mut best) = (0, sum);
                    for o in 1..=n - 4 {
                        sum = sum + commonness(folded[o + 3]) - commonness(folded[o - 1]);
                        if sum < best {
                            (off, best) = (o, sum);
                        }
                    }
                    let key = u32::from_be_bytes([folded[off], folded[off + 1], folded[off + 2], folded[off + 3]]);
                    l.long.push((key, id, off as u32));
                }
            }
        }
        l.long.sort_unstable();
        l.mid.sort_unstable();
        l.short.sort_unstable();
        l.single.sort_unstable();
        l.long.shrink_to_fit();
        l.mid.shrink_to_fit();
        l.short.shrink_to_fit();
        l.single.shrink_to_fit();
        l.bytes.shrink_to_fit();
        l.offsets.shrink_to_fit();
        if !l.long.is_empty() || !l.mid.is_empty() {
            let mut f = Box::new([0; FILTER_WORDS]);
            let keys = l.long.iter().map(|e| e.0).chain(l.mid.iter().map(|e| e.0));
            for k in keys.clone() {
                set_bit(&mut f[..], hash4(k));
            }
            l.long_filter = Some(f);
        }
        if !l.long.is_empty() || !l.mid.is_empty() || !l.short.is_empty() {
            let mut g = Box::new([0; FILTER_WORDS]);
            let keys = l.long.iter().map(|e| e.0).chain(l.mid.iter().map(|e| e.0));
            for k in keys.clone() {
                set_pair_cases(&mut g[..], k as u16);
            }
            for &(k, _) in &l.short {
                set_pair_cases(&mut g[..], k);
            }
            // the gate of every second position: also the pair before the last of each key
            // (the first two bytes of a three-byte pattern), and for a two-byte pattern every
            // pair next to it that holds its rarer byte
            let mut g2 = g.clone();
            for k in keys {
                set_pair_cases(&mut g2[..], (k >> 8) as u16);
            }
            let mut short_back = false;
            for &(k, _) in &l.short {
                let [a, b] = k.to_be_bytes();
                for x in 0..=255u8 {
                    if commonness(b) <= commonness(a) {
                        // the pattern, then any byte: the pair one position on
                        short_back = true;
                        for c in cases(b) {
                            set_bit(&mut g2[..], pair(c, x));
                        }
                    } else {
                        // any byte, then the pattern: the pair one position back
                        for c in cases(a) {
                            set_bit(&mut g2[..], pair(x, c));
                        }
                    }
                }
            }
            let bits: u32 = g2.iter().map(|w| w.count_ones()).sum();
            l.stride = stride.unwrap_or(if bits <= STRIDE_TWO_MAX_BITS { Stride::Two } else { Stride::One });
            if l.stride == Stride::Two {
                l.short_back = short_back;
                g = g2;
            }
            l.gate = Some(g);
        }
        if !l.short.is_empty() {
            let mut f = Box::new([0; FILTER_WORDS]);
            for &(k, _) in &l.short {
                set_bit(&mut f[..], k as usize);
            }
            l.short_filter = Some(f);
        }
        for &(b, _) in &l.single {
            for c in cases(b) {
                set_bit(&mut l.single_filter, c as usize);
            }
        }
        l
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap memory used, bytes.
    pub fn memory_usage(&self) -> usize {
        self.bytes.capacity()
            + self.offsets.capacity() * 4
            + self.long.capacity() * 12
            + self.mid.capacity() * 8
            + self.long_filter.as_ref().map_or(0, |_| FILTER_WORDS * 8)
            + self.short.capacity() * 8
            + self.short_filter.as_ref().map_or(0, |_| FILTER_WORDS * 8)
            + self.gate.as_ref().map_or(0, |_| FILTER_WORDS * 8)
            + self.single.capacity() * 8
    }

    fn pattern(&self, id: u32) -> &[u8] {
        let (a, b) = (self.offsets[id as usize] as usize, self.offsets[id as usize + 1] as usize);
        &self.bytes[a..b]
    }

    /// Whether pattern `id` occurs in `data` at `start` (case-insensitively).
    fn at(&self, id: u32, data: &[u8], start: usize) -> bool {
        let p = self.pattern(id);
        data.get(start..start + p.len()).is_some_and(|d| d.iter().zip(p).all(|(&a, &b)| FOLD[a as usize] == b))
    }

    /// Calls `found` with the id of each pattern occurring in `data`, at least once per
    /// pattern that occurs (possibly more often).
    pub fn find_all(&self, data: &[u8], mut found: impl FnMut(u32)) {
        // one loop per combination, so the per-byte work is only what the set needs
        let two = self.stride == Stride::Two;
        match (self.single.is_empty(), self.short.is_empty(), self.long.is_empty() && self.mid.is_empty(), two) {
            (true, true, true, _) => {}
            (true, true, false, false) => self.scan::<false, false, true, false>(data, &mut found),
            (true, false, false, false) => self.scan::<false, true, true, false>(data, &mut found),
            (true, false, true, false) => self.scan::<false, true, false, false>(data, &mut found),
            (true, true, false, true) => self.scan::<false, false, true, true>(data, &mut found),
            (true, false, false, true) => self.scan::<false, true, true, true>(data, &mut found),
            (true, false, true, true) => self.scan::<false, true, false, true>(data, &mut found),
            (false, _, _, false) => self.scan::<true, true, true, false>(data, &mut found),
            (false, _, _, true) => self.scan::<true, true, true, true>(data, &mut found),
        }
    }

    /// The gate's stride this set was built with.
    pub fn stride(&self) -> Stride {
        self.stride
    }

    #[inline(always)]
    fn scan<const SINGLE: bool, const SHORT: bool, const LONG: bool, const TWO: bool>(
        &self,
        data: &[u8],
        found: &mut dyn FnMut(u32),
    ) {
        if SINGLE {
            for &b in data {
                if self.single_filter[(b >> 6) as usize] & (1u64 << (b & 63)) != 0 {
                    self.single_hit(FOLD[b as usize], found);
                }
            }
        }
        if !(SHORT || LONG) {
            return;
        }
        let Some(gate) = self.gate.as_deref() else { return };
        // eight bytes loaded at once (the last ones padded with zeros), then one shift and one
        // bit test per pair of bytes
        let mut chunks = data.chunks_exact(8);
        let (mut prev, mut base) = (0u64, 0usize);
        for c in chunks.by_ref() {
            // (`chunks_exact`: always eight bytes)
            let Ok(bytes) = <[u8; 8]>::try_from(c) else { break };
            let x = u64::from_le_bytes(bytes);
            if TWO {
                self.chunk_two::<SHORT, LONG>(gate, data, prev, x, base, 8, found);
            } else {
                self.chunk::<SHORT, LONG>(gate, data, prev, x, base, 8, found);
            }
            (prev, base) = (x, base + 8);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            let x = u64::from_le_bytes(b);
            if TWO {
                self.chunk_two::<SHORT, LONG>(gate, data, prev, x, base, rest.len(), found);
            } else {
                self.chunk::<SHORT, LONG>(gate, data, prev, x, base, rest.len(), found);
            }
        }
        // a two-byte pattern ending at the last byte whose gate pair would start there
        if TWO && SHORT && self.short_back && data.len() >= 2 {
            let i = data.len() - 1;
            let k = u16::from_be_bytes([FOLD[data[i - 1] as usize], FOLD[data[i] as usize]]);
            if let Some(short_filter) = self.short_filter.as_deref()
                && bit(short_filter, usize::from(k))
            {
                self.short_hit(k, data, i - 1, found);
            }
        }
    }

    /// [`Literals::chunk`] at every second position: the pairs ending at the even offsets of the
    /// chunk (at 0: the pair across the two chunks, or the zero padding and the first byte at
    /// the start of the buffer); a set bit looks for the patterns ending there and one byte
    /// further (and, for two-byte patterns keyed by their second byte, one byte back).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn chunk_two<const SHORT: bool, const LONG: bool>(
        &self,
        gate: &[u64; FILTER_WORDS],
        data: &[u8],
        prev: u64,
        x: u64,
        base: usize,
        n: usize,
        found: &mut dyn FnMut(u32),
    ) {
        let set = |k: u16| gate[usize::from(k >> 6)] & (1u64 << (k & 63)) != 0;
        if set(((prev >> 56) | (x << 8)) as u16) {
            self.gate_hit_two::<SHORT, LONG>(data, prev, x, base, 0, n, found);
        }
        macro_rules! pair_ending_at {
            ($($m:literal)*) => {$(
                if set((x >> (8 * ($m - 1))) as u16) && $m < n {
                    self.gate_hit_two::<SHORT, LONG>(data, prev, x, base, $m, n, found);
                }
            )*};
        }
        pair_ending_at!(2 4 6);
    }

    /// The stride-two gate's bit of the pair ending at `base + m` is set: the patterns ending
    /// there, one byte further (within the chunk's `n` bytes) and, keyed one byte on, back.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn gate_hit_two<const SHORT: bool, const LONG: bool>(
        &self,
        data: &[u8],
        prev: u64,
        x: u64,
        base: usize,
        m: usize,
        n: usize,
        found: &mut dyn FnMut(u32),
    ) {
        self.gate_hit::<SHORT, LONG>(data, prev, x, base, m, found);
        if m + 1 < n {
            self.gate_hit::<SHORT, LONG>(data, prev, x, base, m + 1, found);
        }
        if SHORT && self.short_back && base + m >= 2 {
            // the two bytes ending one position back
            let z = u128::from(prev) | u128::from(x) << 64;
            let w = fold4((z >> (8 * (m + 4))) as u32).swap_bytes();
            if let Some(short_filter) = self.short_filter.as_deref()
                && bit(short_filter, (w & 0xffff) as usize)
            {
                self.short_hit(w as u16, data, base + m - 2, found);
            }
        }
    }

    /// The pairs of bytes ending in the chunk `x` of `n` bytes at `base` (`prev`: the chunk
    /// before, zero at the start): the pair across the two chunks, then those within `x` (a
    /// pattern of two bytes or more ends at earliest at the second byte). The last chunk is
    /// padded with zeros: the pairs ending in the padding pass the gate but are not looked at
    /// (one loop of a constant length, unrolled, for all chunks).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn chunk<const SHORT: bool, const LONG: bool>(
        &self,
        gate: &[u64; FILTER_WORDS],
        data: &[u8],
        prev: u64,
        x: u64,
        base: usize,
        n: usize,
        found: &mut dyn FnMut(u32),
    ) {
        let set = |k: u16| gate[usize::from(k >> 6)] & (1u64 << (k & 63)) != 0;
        if base > 0 && set(((prev >> 56) | (x << 8)) as u16) {
            self.gate_hit::<SHORT, LONG>(data, prev, x, base, 0, found);
        }
        // (unrolled by hand: the compiler keeps a loop around the inlined hit path)
        macro_rules! pair_ending_at {
            ($($m:literal)*) => {$(
                if set((x >> (8 * ($m - 1))) as u16) && $m < n {
                    self.gate_hit::<SHORT, LONG>(data, prev, x, base, $m, found);
                }
            )*};
        }
        pair_ending_at!(1 2 3 4 5 6 7);
    }

    /// The gate's bit of the pair ending at `base + m` is set (`prev` and `x`: the chunks
    /// before and at `base`): the filters of the patterns ending there, on the folded bytes.
    #[inline(always)]
    fn gate_hit<const SHORT: bool, const LONG: bool>(
        &self,
        data: &[u8],
        prev: u64,
        x: u64,
        base: usize,
        m: usize,
        found: &mut dyn FnMut(u32),
    ) {
        let i = base + m;
        // the four bytes ending at `i` (zeros before the buffer), the first one highest as
        // the keys are
        let z = u128::from(prev) | u128::from(x) << 64;
        let w = fold4((z >> (8 * (m + 5))) as u32).swap_bytes();
        if SHORT
            && let Some(short_filter) = self.short_filter.as_deref()
            && i >= 1
            && bit(short_filter, (w & 0xffff) as usize)
        {
            self.short_hit(w as u16, data, i - 1, found);
        }
        if LONG && let Some(long_filter) = self.long_filter.as_deref() {
            if i >= 3 && bit(long_filter, hash4(w)) {
                self.long_hit(w, data, i - 3, found);
            }
            if !self.mid.is_empty() && i >= 2 && bit(long_filter, hash4(w & 0xff_ffff)) {
                self.mid_hit(w & 0xff_ffff, found);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn single_hit(&self, f: u8, found: &mut dyn FnMut(u32)) {
        let from = self.single.partition_point(|e| e.0 < f);
        for &(_, id) in self.single[from..].iter().take_while(|e| e.0 == f) {
            found(id);
        }
    }

    #[cold]
    #[inline(never)]
    fn short_hit(&self, k: u16, data: &[u8], start: usize, found: &mut dyn FnMut(u32)) {
        let from = self.short.partition_point(|e| e.0 < k);
        for &(_, id) in self.short[from..].iter().take_while(|e| e.0 == k) {
            if self.at(id, data, start) {
                found(id);
            }
        }
    }

    /// The three-byte patterns `k` (the folded bytes ending here): equal keys are a match.
    #[cold]
    #[inline(never)]
    fn mid_hit(&self, k: u32, found: &mut dyn FnMut(u32)) {
        let from = self.mid.partition_point(|e| e.0 < k);
        for &(_, id) in self.mid[from..].iter().take_while(|e| e.0 == k) {
            found(id);
        }
    }

    /// A possible occurrence of the patterns keyed `w`, whose key starts at `key_start`.
    #[cold]
    #[inline(never)]
    fn long_hit(&self, w: u32, data: &[u8], key_start: usize, found: &mut dyn FnMut(u32)) {
        let from = self.long.partition_point(|e| e.0 < w);
        for &(_, id, off) in self.long[from..].iter().take_while(|e| e.0 == w) {
            if let Some(start) = key_start.checked_sub(off as usize)
                && self.at(id, data, start)
            {
                found(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_set_has_bitmaps_only_for_the_pattern_lengths_it_holds_and_still_finds_them() {
        let hits = |l: &Literals, d: &[u8]| {
            let mut v = Vec::new();
            l.find_all(d, |id| v.push(id));
            v.sort_unstable();
            v.dedup();
            v
        };
        let long = Literals::new(&["abcdef"]);
        let short = Literals::new(&["ab"]);
        let both = Literals::new(&["abcdef", "ab"]);
        assert!(long.memory_usage() + 4096 < both.memory_usage(), "no 2-byte bitmap without short patterns");
        assert!(short.memory_usage() + 4096 < both.memory_usage(), "no 4-byte bitmap without long patterns");
        assert_eq!(hits(&long, b"xxABCDEFxx"), [0]);
        assert!(hits(&long, b"xxabxx").is_empty());
        assert_eq!(hits(&short, b"xxABxx"), [0]);
        assert_eq!(hits(&both, b"abcdef"), [0, 1]);
        // one-byte patterns scan with every bitmap, present or not
        let single_long = Literals::new(&["z", "abcdef"]);
        assert_eq!(hits(&single_long, b"..abcdef..z"), [0, 1]);
        assert!(hits(&single_long, b"..ab..").is_empty());
        let single_short = Literals::new(&["z", "ab"]);
        assert_eq!(hits(&single_short, b"..ab..z"), [0, 1]);
        assert_eq!(hits(&single_short, b"..abcdef.."), [1], "ab occurs in abcdef");
    }

    use super::*;

    fn found(l: &Literals, data: &[u8]) -> Vec<u32> {
        let mut v = Vec::new();
        l.find_all(data, |id| v.push(id));
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every pattern occurring anywhere, by brute force.
    fn naive(pats: &[&[u8]], data: &[u8]) -> Vec<u32> {
        let lower = data.to_ascii_lowercase();
        (0..pats.len() as u32)
            .filter(|&i| {
                let p = pats[i as usize].to_ascii_lowercase();
                !p.is_empty() && lower.windows(p.len()).any(|w| w == p.as_slice())
            })
            .collect()
    }

    #[test]
    fn three_byte_patterns_are_found_at_either_end_and_among_two_byte_and_long_ones() {
        let l = Literals::new(&[&b"\x00\x00\x01"[..], b"ab", b"XYZ", b"long pattern"]);
        assert_eq!(found(&l, b"\x00\x00\x01"), [0]);
        assert_eq!(found(&l, b"..xyz"), [2]);
        assert_eq!(found(&l, b"xyZ.."), [2]);
        assert!(found(&l, b"\x00\x00\x00\x00\x02xy").is_empty(), "their first two bytes alone are no match");
        assert_eq!(found(&l, b"ab LONG PATTERN \x00\x00\x01"), [0, 1, 3]);
        // without long or two-byte patterns too
        let only = Literals::new(&["xyz"]);
        assert_eq!(found(&only, b"XYZ"), [0]);
        assert!(found(&only, b"xy").is_empty());
    }

    #[test]
    fn finds_every_pattern_of_every_length_case_insensitively_and_overlapping() {
        let pats: &[&[u8]] =
            &[b"a", b"ab", b"abc", b"abcd", b"bcde", b"CDEFGH", b"\x00\x00\x00\x00", b"x\x00", b"", b"zzzzz"];
        let l = Literals::new(pats);
        assert_eq!(l.len(), pats.len());
        for data in
            [&b"ABCDEFGH"[..], b"xx\x00\x00\x00\x00\x00", b"a", b"", b"zzzz", b"zzzzz", b"..bcdE..", b"x\x00abcdefgh"]
        {
            assert_eq!(found(&l, data), naive(pats, data), "in {data:?}");
        }
        assert_eq!(found(&l, b"AbCdEfGh"), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn folding_four_bytes_at_once_lower_cases_each_byte_as_the_table_does() {
        for b in 0..=255u8 {
            for lane in 0..4 {
                let w = u32::from(b) << (8 * lane) | 0x5a41_7a61 & !(0xff << (8 * lane));
                let want = u32::from_le_bytes(w.to_le_bytes().map(|c| FOLD[c as usize]));
                assert_eq!(fold4(w), want, "{w:#x}");
            }
        }
    }

    #[test]
    fn finds_each_pattern_length_at_every_offset_and_in_any_case_across_the_eight_byte_loads() {
        // the two-byte patterns keyed by either byte in the stride-two gate (the rarer one)
        let pats: &[&[u8]] = &[b"Qz", b"qXj", b"QwKv", b"vKwQjx", b"\x00#", b"#\x00"];
        for stride in [Stride::One, Stride::Two] {
            every_offset(&Literals::with_stride(pats, stride), pats);
        }
        assert_eq!(Literals::new(pats).stride(), Stride::Two, "a sparse gate is tested at every second position");
    }

    fn every_offset(l: &Literals, pats: &[&[u8]]) {
        for (id, p) in pats.iter().enumerate() {
            for len in p.len()..40 {
                for at in 0..=len - p.len() {
                    let mut data = vec![b'.'; len];
                    for (j, (d, &c)) in data[at..].iter_mut().zip(p.iter()).enumerate() {
                        // the pattern's bytes in alternating case
                        *d = if (at + j) % 2 == 0 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
                    }
                    assert_eq!(found(l, &data), [id as u32], "{p:?} at {at} in {len} bytes, {:?}", l.stride());
                }
            }
        }
    }

    #[test]
    fn matches_the_naive_search_on_generated_patterns_and_data() {
        // a deterministic xorshift generator over a small alphabet, so patterns do occur
        let mut s: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let alphabet = b"aAbB\x00\xff/ ";
        for round in 0..50 {
            let pats: Vec<Vec<u8>> = (0..1 + round % 40)
                .map(|_| (0..1 + next() % 9).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect())
                .collect();
            let refs: Vec<&[u8]> = pats.iter().map(Vec::as_slice).collect();
            let one = Literals::with_stride(&refs, Stride::One);
            let two = Literals::with_stride(&refs, Stride::Two);
            for _ in 0..10 {
                let data: Vec<u8> =
                    (0..next() % 200).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
                let want = naive(&refs, &data);
                assert_eq!(found(&one, &data), want, "stride one, patterns {refs:?} data {data:?}");
                assert_eq!(found(&two, &data), want, "stride two, patterns {refs:?} data {data:?}");
            }
        }
    }
}
