//! A reference-counted string table, one per shard: stored spans hold 4-byte
//! symbols instead of strings, and a string is freed when the last span that
//! used it is evicted, so high-cardinality values cannot leak.
use std::collections::HashMap;
use std::sync::Arc;

/// An index into an [`Interner`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sym(u32);

impl Sym {
    pub fn to_bits(self) -> u64 {
        self.0 as u64
    }
    pub fn from_bits(bits: u64) -> Sym {
        Sym(bits as u32)
    }
}

/// Approximate heap cost of one entry besides the string's bytes: the
/// `Arc` header, the map slot and the table slot.
const ENTRY_OVERHEAD: usize = 64;

#[derive(Default)]
pub struct Interner {
    ids: HashMap<Arc<str>, Sym, foldhash::fast::RandomState>,
    strings: Vec<Option<(Arc<str>, u32)>>,
    free: Vec<u32>,
    bytes: usize,
}

impl Interner {
    /// The symbol of `s`, adding it or taking one more reference to it.
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&sym) = self.ids.get(s) {
            if let Some((_, count)) = &mut self.strings[sym.0 as usize] {
                *count += 1;
            }
            return sym;
        }
        let text: Arc<str> = Arc::from(s);
        let slot = match self.free.pop() {
            Some(i) => {
                self.strings[i as usize] = Some((Arc::clone(&text), 1));
                i
            }
            None => {
                self.strings.push(Some((Arc::clone(&text), 1)));
                (self.strings.len() - 1) as u32
            }
        };
        self.bytes += s.len() + ENTRY_OVERHEAD;
        self.ids.insert(text, Sym(slot));
        Sym(slot)
    }

    /// The symbol of `s` if any stored span uses it, without taking a reference.
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    pub fn resolve(&self, sym: Sym) -> &str {
        match &self.strings[sym.0 as usize] {
            Some((s, _)) => s,
            None => "",
        }
    }

    /// Drops one reference; the string is freed with its last one.
    pub fn release(&mut self, sym: Sym) {
        let slot = &mut self.strings[sym.0 as usize];
        let Some((text, count)) = slot else { return };
        *count -= 1;
        if *count == 0 {
            self.ids.remove(&**text);
            self.bytes -= text.len() + ENTRY_OVERHEAD;
            *slot = None;
            self.free.push(sym.0);
        }
    }

    /// Estimated heap bytes of the strings held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_live_while_referenced() {
        let mut i = Interner::default();
        let a = i.intern("http.method");
        assert_eq!(i.intern("http.method"), a);
        let b = i.intern("GET");
        assert_eq!(i.resolve(a), "http.method");
        i.release(a);
        assert_eq!(i.lookup("http.method"), Some(a));
        i.release(a);
        assert_eq!(i.lookup("http.method"), None);
        assert_eq!(i.len(), 1);
        // the freed slot is reused
        let c = i.intern("POST");
        assert_eq!(c, a);
        assert_eq!(i.resolve(b), "GET");
        i.release(b);
        i.release(c);
        assert_eq!(i.bytes(), 0);
    }
}
