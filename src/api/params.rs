//! A request's parameters: the query, then a form body, percent-decoded. Names are matched
//! case-insensitively (the SDKs differ in case), values are what the caller sent; a
//! parameter that is given but empty counts as absent. The signature checks see the query
//! and the form apart ([`Params::query`], [`Params::form`]).

use super::errors::{truncate, ApiError};
use super::http::Request;
use super::sign;

/// Request parameters, decoded, query first.
pub(super) struct Params {
    all: Vec<(String, String)>,
    /// The first `query_len` of `all` came from the query, the rest from the body.
    query_len: usize,
}

impl Params {
    /// The query's parameters, then those of an `application/x-www-form-urlencoded` body
    /// (the default when no content type is given).
    pub(super) fn from_request(req: &Request) -> Self {
        let mut all = sign::form_decode(&req.query);
        let query_len = all.len();
        let is_form = req
            .header("content-type")
            .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form && !req.body.is_empty() {
            all.extend(sign::form_decode(&String::from_utf8_lossy(&req.body)));
        }
        Self { all, query_len }
    }

    pub(super) fn query(&self) -> &[(String, String)] {
        &self.all[..self.query_len]
    }

    pub(super) fn form(&self) -> &[(String, String)] {
        &self.all[self.query_len..]
    }

    /// Every parameter, query first.
    pub(super) fn all(&self) -> &[(String, String)] {
        &self.all
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.all
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing(name))
    }

    pub(super) fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::illegal(
                name,
                format!("{name} must be true or false, not {:?}", truncate(v)),
            )),
        }
    }

    /// A list parameter: `name.1=..`, `name.2=..` (flattened by the SDKs) or a single
    /// `name=..`; names match exactly.
    pub(super) fn list(&self, name: &str) -> Vec<&str> {
        self.all
            .iter()
            .filter(|(k, _)| {
                k == name
                    || k.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str, content_type: Option<&str>, body: &str) -> Params {
        let mut headers = Vec::new();
        if let Some(ct) = content_type {
            headers.push(("content-type".to_owned(), ct.to_owned()));
        }
        Params::from_request(&Request {
            method: "POST".into(),
            path: "/".into(),
            query: query.into(),
            headers,
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn query_then_form_names_case_insensitive() {
        let p = params("action=List&DryRun=TRUE", None, "Name=a%20b&Empty=");
        assert_eq!(p.query().len(), 2);
        assert_eq!(p.form().len(), 2);
        assert_eq!(p.get("Action"), Some("List"));
        assert_eq!(p.get("name"), Some("a b"));
        assert_eq!(p.bool("DryRun"), Ok(Some(true)));
        assert_eq!(p.bool("Missing"), Ok(None));
        assert_eq!(p.required("Empty").unwrap_err().code, "MissingParam.Empty");
        let p = params("X=1", Some("application/json"), "Name=ignored");
        assert_eq!(p.form().len(), 0);
        assert_eq!(p.bool("X").unwrap_err().code, "IllegalParam.X");
    }

    #[test]
    fn lists_are_flattened_or_single() {
        let p = params("Id.1=a&Id.2=b&Ids=c&Id=d&id.3=e", None, "");
        assert_eq!(p.list("Id"), ["a", "b", "d"]);
    }
}
