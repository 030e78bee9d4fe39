//! Where a batch's state, saved originals, large templates and reports are kept: an S3
//! bucket (as the Lambda functions use it) or a local directory (the CLI without a bucket).

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use cascade_core::restore::StateLocation;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{AwsError, ErrorKind};

/// A key-value store of JSON and text objects.
#[derive(Debug, Clone)]
pub enum Store {
    /// Objects in an S3 bucket, under a prefix.
    S3 {
        /// The client.
        client: aws_sdk_s3::Client,
        /// The bucket.
        bucket: String,
        /// A key prefix (empty, or ending in `/`).
        prefix: String,
    },
    /// Files under a directory.
    Local(PathBuf),
}

/// An error of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such batch in the store.
    #[error(
        "no batch {0} in the state store: check the id (`cascade report latest`) and --bucket / --state-dir"
    )]
    UnknownBatch(String),
    /// A call to S3 failed.
    #[error("{0}")]
    Aws(#[from] AwsError),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// An object is not the JSON expected.
    #[error("{key} is not valid: {message}")]
    Invalid {
        /// The object.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Store {
    /// Writes an object.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        match self {
            Store::S3 {
                client,
                bucket,
                prefix,
            } => {
                client
                    .put_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{key}"))
                    .content_type(content_type)
                    .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map_err(|e| AwsError::call("s3:PutObject", e))?;
                Ok(())
            }
            Store::Local(root) => {
                let path = root.join(key);
                let io = |source| StoreError::Io {
                    path: path.clone(),
                    source,
                };
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent).await.map_err(io)?;
                }
                // Write then rename, so a crash never leaves half a state file.
                let tmp = path.with_extension("tmp");
                tokio::fs::write(&tmp, &body).await.map_err(io)?;
                tokio::fs::rename(&tmp, &path).await.map_err(io)
            }
        }
    }

    /// Reads an object, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::S3 {
                client,
                bucket,
                prefix,
            } => {
                match client
                    .get_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{key}"))
                    .send()
                    .await
                {
                    Ok(out) => {
                        let body = out.body.collect().await.map_err(|e| {
                            AwsError::other("s3:GetObject", ErrorKind::Unavailable, e.to_string())
                        })?;
                        Ok(Some(body.into_bytes().to_vec()))
                    }
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                    Err(e) => Err(AwsError::call("s3:GetObject", e).into()),
                }
            }
            Store::Local(root) => {
                let path = root.join(key);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StoreError::Io { path, source }),
                }
            }
        }
    }

    /// The keys under a prefix, sorted.
    pub async fn list(&self, key_prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        match self {
            Store::S3 {
                client,
                bucket,
                prefix,
            } => {
                let mut pages = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(format!("{prefix}{key_prefix}"))
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| AwsError::call("s3:ListObjectsV2", e))?;
                    keys.extend(
                        page.contents()
                            .iter()
                            .filter_map(|o| o.key())
                            .map(|k| k.strip_prefix(prefix.as_str()).unwrap_or(k).to_string()),
                    );
                }
            }
            Store::Local(root) => {
                let (root, dir) = (root.clone(), root.join(key_prefix));
                keys = tokio::task::spawn_blocking(move || {
                    let mut keys = Vec::new();
                    collect_files(&root, &dir, &mut keys).map(|()| keys)
                })
                .await
                .map_err(|e| StoreError::Io {
                    path: key_prefix.into(),
                    source: std::io::Error::other(e),
                })??;
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Writes a value as pretty JSON.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let body = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Invalid {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        self.put(key, body, "application/json").await
    }

    /// Reads a JSON value, or `None` when there is none.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Invalid {
                        key: key.to_string(),
                        message: e.to_string(),
                    })
            }
        }
    }

    /// Where an object is, for people: `s3://bucket/key` or a file path.
    pub fn location(&self, key: &str) -> String {
        match self {
            Store::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}{key}"),
            Store::Local(root) => root.join(key).display().to_string(),
        }
    }

    /// The HTTPS URL CloudFormation reads a template from (`TemplateURL`), as S3's own
    /// endpoint rules give it for the bucket in `region` (its partition's domain, virtual
    /// hosted); only an S3 store has one.
    pub fn template_url(&self, key: &str, region: &str) -> Option<String> {
        use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let Store::S3 { bucket, prefix, .. } = self else {
            return None;
        };
        let params = Params::builder()
            .bucket(bucket)
            .region(region)
            .build()
            .ok()?;
        let resolver = DefaultResolver::new();
        let endpoint = resolver.resolve_endpoint(&params);
        // The default resolver answers at once; its future is ready.
        let endpoint = futures_ready(endpoint)?.ok()?;
        Some(format!(
            "{}/{prefix}{key}",
            endpoint.url().trim_end_matches('/')
        ))
    }

    /// Where this store is, as `cascade restore` is told: the bucket and its client's
    /// region, or the directory (absolute), or nothing for the default directory.
    pub fn state_location(&self) -> StateLocation {
        match self {
            Store::S3 { client, bucket, .. } => StateLocation::Bucket {
                bucket: bucket.clone(),
                region: client.config().region().map(|r| r.to_string()),
            },
            Store::Local(dir) if *dir == default_state_dir() => StateLocation::DefaultDirectory,
            Store::Local(dir) => StateLocation::Directory(
                std::path::absolute(dir)
                    .unwrap_or_else(|_| dir.clone())
                    .display()
                    .to_string(),
            ),
        }
    }

    /// Objects in the S3 bucket `bucket`, at its root.
    pub fn s3(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Store::S3 {
            client,
            bucket: bucket.into(),
            prefix: String::new(),
        }
    }
}

/// The CLI's local state directory when none is given: `$XDG_STATE_HOME/secret-cascade`,
/// else `~/.local/state/secret-cascade`.
pub fn default_state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("secret-cascade")
}

/// The value of a future that is already complete, without an executor.
fn futures_ready<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => Some(value),
        std::task::Poll::Pending => None,
    }
}

fn collect_files(root: &Path, dir: &Path, keys: &mut Vec<String>) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(root, &path, keys)?;
        } else if path.extension().is_none_or(|e| e != "tmp")
            && let Ok(relative) = path.strip_prefix(root)
        {
            keys.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3_store(bucket: &str) -> Store {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        Store::S3 {
            client: aws_sdk_s3::Client::new(&config),
            bucket: bucket.into(),
            prefix: String::new(),
        }
    }

    #[test]
    fn template_urls_follow_the_partition_of_the_region() {
        let store = s3_store("cascade-state");
        assert_eq!(
            store
                .template_url("batches/b/templates/a-remove.json", "us-east-1")
                .as_deref(),
            Some(
                "https://cascade-state.s3.us-east-1.amazonaws.com/batches/b/templates/a-remove.json"
            )
        );
        assert_eq!(
            store.template_url("k.json", "cn-north-1").as_deref(),
            Some("https://cascade-state.s3.cn-north-1.amazonaws.com.cn/k.json")
        );
        assert_eq!(
            Store::Local("/tmp".into()).template_url("k", "us-east-1"),
            None
        );
    }
}
