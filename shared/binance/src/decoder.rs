//! [`Decoder`]: [`decode_frame`](crate::decode_frame) for a stream loop, sharing names between frames.

use acctmon_domain::{Account, Asset, Event, Symbol};

use crate::ParseError;
use crate::frame::decode_whole;
use crate::reader::GiveUp;
use crate::user::hot::Names;

/// How many symbols (and, apart, assets) a [`Decoder`] remembers. An account trades a handful of symbols
/// at a time; a miss only costs the allocation that every frame pays without a decoder.
const REMEMBERED: usize = 8;

/// Decodes frames like [`decode_frame`](crate::decode_frame) and gives the same events, but keeps the
/// last few symbols and assets of `ORDER_TRADE_UPDATE` frames and hands out shared copies of them instead
/// of allocating each name anew. One per stream loop; it holds no other state, so frames of any accounts
/// and in any order may go through the same decoder.
///
/// ```
/// use acctmon_binance::Decoder;
/// use acctmon_domain::{Account, Event};
///
/// let account = Account::new("main").unwrap();
/// let mut decoder = Decoder::new();
/// let text = r#"{"e":"ORDER_TRADE_UPDATE","E":2,"T":1,"o":{"s":"BTCUSDT","c":"x","S":"BUY",
///   "o":"MARKET","q":"0.001","p":"0","ap":"64089.2","x":"TRADE","X":"FILLED","i":8389765739703625592,
///   "l":"0.001","z":"0.001","L":"64089.2","n":"0.0256","N":"USDT","T":1,"t":7,"m":false,"R":false,
///   "ps":"BOTH"}}"#;
/// let first = decoder.decode_frame(&account, text).unwrap();
/// let second = decoder.decode_frame(&account, text).unwrap();
/// assert_eq!(first, second);
/// assert!(matches!(&first[..], [Event::Fill(_), Event::Order(_)]));
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    symbols: Recent<Symbol>,
    assets: Recent<Asset>,
}

impl Decoder {
    /// A decoder that remembers nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one frame of text into domain events, as [`decode_frame`](crate::decode_frame) does.
    pub fn decode_frame(
        &mut self,
        account: &Account,
        text: &str,
    ) -> Result<Vec<Event>, ParseError> {
        let mut out = Vec::with_capacity(2);
        self.decode_frame_into(account, text, &mut out)?;
        Ok(out)
    }

    /// Like [`Decoder::decode_frame`], appending to `out`, as
    /// [`decode_frame_into`](crate::decode_frame_into) does: on error `out` is left as it was.
    pub fn decode_frame_into(
        &mut self,
        account: &Account,
        text: &str,
        out: &mut Vec<Event>,
    ) -> Result<(), ParseError> {
        decode_whole(account, text, self, out)
    }
}

impl Names for Decoder {
    #[inline]
    fn symbol(&mut self, name: &str) -> Result<Symbol, GiveUp> {
        self.symbols.get_or_make(name, Symbol::new)
    }

    #[inline]
    fn asset(&mut self, name: &str) -> Result<Asset, GiveUp> {
        self.assets.get_or_make(name, Asset::new)
    }
}

/// The last [`REMEMBERED`] names made, replaced oldest first.
#[derive(Debug)]
struct Recent<T> {
    names: Vec<T>,
    /// Where the next new name goes once `names` is full.
    next: usize,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent {
            names: Vec::new(),
            next: 0,
        }
    }
}

impl<T: Clone + AsRef<str>> Recent<T> {
    /// A shared copy of `name` if it is remembered, else `make(name)`, remembered. A name that `make`
    /// refuses gives up.
    #[inline]
    fn get_or_make<E>(
        &mut self,
        name: &str,
        make: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, GiveUp> {
        if let Some(known) = self.names.iter().find(|known| known.as_ref() == name) {
            return Ok(known.clone());
        }
        let made = make(name).map_err(|_| GiveUp)?;
        if self.names.len() < REMEMBERED {
            self.names.push(made.clone());
        } else if let Some(slot) = self.names.get_mut(self.next) {
            *slot = made.clone();
            self.next = (self.next + 1) % REMEMBERED;
        }
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shared_and_the_oldest_is_replaced_first() {
        let mut decoder = Decoder::new();
        let first = decoder.symbol("BTCUSDT").unwrap();
        let again = decoder.symbol("BTCUSDT").unwrap();
        assert!(std::ptr::eq(first.as_str(), again.as_str()));
        for i in 0..REMEMBERED {
            decoder.symbol(&format!("S{i}")).unwrap();
        }
        // BTCUSDT was the oldest: it has made room, and comes back as a new allocation.
        let later = decoder.symbol("BTCUSDT").unwrap();
        assert_eq!(later, first);
        assert!(!std::ptr::eq(first.as_str(), later.as_str()));
        assert_eq!(decoder.symbols.names.len(), REMEMBERED);
        assert!(decoder.symbol("").is_err());
        assert!(decoder.asset("").is_err());
        let usdt = decoder.asset("USDT").unwrap();
        assert!(std::ptr::eq(
            usdt.as_str(),
            decoder.asset("USDT").unwrap().as_str()
        ));
    }
}
