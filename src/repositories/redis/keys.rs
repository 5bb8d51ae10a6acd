//! The one place Redis key strings are built. Layout (contract):
//! `{prefix}cache:user:{id}`, `{prefix}session:user:{id}`, ...

use std::marker::PhantomData;

use crate::domain::{User, UserId};

/// A cache key tied to the type of the value stored under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey<T> {
    key: String,
    value: PhantomData<fn() -> T>,
}

impl<T> CacheKey<T> {
    fn new(key: String) -> Self {
        Self {
            key,
            value: PhantomData,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }
}

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// Everything admin eviction may touch lives under this.
    pub fn cache_namespace(&self) -> String {
        format!("{}cache:", self.prefix)
    }

    pub fn user(&self, id: UserId) -> CacheKey<User> {
        CacheKey::new(format!("{}cache:user:{id}", self.prefix))
    }

    pub fn session(&self, id: UserId) -> String {
        format!("{}session:user:{id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_contract_layout() {
        let keys = Keys::new("app:");
        assert_eq!(keys.user(UserId(42)).as_str(), "app:cache:user:42");
        assert_eq!(keys.session(UserId(42)), "app:session:user:42");
        assert!(
            keys.user(UserId(42))
                .as_str()
                .starts_with(&keys.cache_namespace())
        );
        assert!(
            !keys
                .session(UserId(42))
                .starts_with(&keys.cache_namespace())
        );
    }
}
