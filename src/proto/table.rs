//! [`Table`]: a `Vec` for rows addressed by position.
//!
//! The driver keeps its chats, operations and subscriptions in vectors and addresses a row by the
//! index it has just found. An index out of range is a driver bug either way; what this type
//! changes is the failure: a fixed message instead of `Vec`'s formatted one ("the len is … but
//! the index is …"). A panic message that formats a number links `core::fmt`'s integer printing,
//! padding and `Debug` escaping into the wasm module for messages the slim build never prints (its
//! panic handler traps). With the other formatted panics gone too (`str::contains`, digit
//! buffers) the optimized module lost 5 KB gzip (59.5 → 54.3 KB).

#[allow(unused_imports)]
use crate::prelude::*;
use core::ops::{Deref, DerefMut, Index, IndexMut};

/// A `Vec<T>` whose indexing and removal by position fail with a fixed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<T>(Vec<T>);

impl<T> Table<T> {
    /// An empty table.
    pub const fn new() -> Table<T> {
        Table(Vec::new())
    }

    /// `Vec::swap_remove`, failing without formatting when `index` is out of range.
    pub fn swap_remove(&mut self, index: usize) -> T {
        if index >= self.0.len() {
            out_of_range()
        }
        self.0.swap_remove(index)
    }

    /// `Vec::remove`, failing without formatting when `index` is out of range.
    pub fn remove(&mut self, index: usize) -> T {
        if index >= self.0.len() {
            out_of_range()
        }
        self.0.remove(index)
    }
}

impl<T> Default for Table<T> {
    fn default() -> Table<T> {
        Table::new()
    }
}

impl<T> Deref for Table<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T> DerefMut for Table<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<'a, T> IntoIterator for &'a Table<T> {
    type Item = &'a T;
    type IntoIter = core::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut Table<T> {
    type Item = &'a mut T;
    type IntoIter = core::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter_mut()
    }
}

impl<T> Index<usize> for Table<T> {
    type Output = T;
    fn index(&self, index: usize) -> &T {
        match self.0.get(index) {
            Some(row) => row,
            None => out_of_range(),
        }
    }
}

impl<T> IndexMut<usize> for Table<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        match self.0.get_mut(index) {
            Some(row) => row,
            None => out_of_range(),
        }
    }
}

#[cold]
#[inline(never)]
fn out_of_range() -> ! {
    panic!("table row index out of range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_and_removes_like_a_vec() {
        let mut table = Table::new();
        table.push("a");
        table.push("b");
        table.push("c");
        assert_eq!(table[1], "b");
        table[1] = "B";
        assert_eq!(table.swap_remove(0), "a");
        assert_eq!(*table, ["c", "B"]);
        assert_eq!(table.remove(0), "c");
        assert_eq!(*table, ["B"]);
    }

    #[test]
    #[should_panic(expected = "table row index out of range")]
    fn an_index_out_of_range_fails_with_a_fixed_message() {
        let table: Table<u8> = Table::new();
        let _ = table[0];
    }

    #[test]
    #[should_panic(expected = "table row index out of range")]
    fn removing_out_of_range_fails_with_a_fixed_message() {
        let mut table = Table::new();
        table.push(1u8);
        table.swap_remove(1);
    }
}
