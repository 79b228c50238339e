//! The projects under the configured folders and organizations, through Resource Manager v3.
//! Each folder or organization is walked as a source of its own (`gcp:folders/123`): its
//! projects and its sub-folders are listed, page by page, and each sub-folder the same way, at
//! any depth. Every ACTIVE project found joins the collection as `gcp:<project id>`, announced
//! as waiting, once however often it is found (a project also listed in `gcp.projects` is
//! already there).

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use futures::stream::FuturesUnordered;
use google_cloud_gax::error::Error;
use google_cloud_gax::paginator::Paginator;
use google_cloud_resourcemanager_v3::model::{folder, project};
use tokio::sync::mpsc;

use super::{
    Directory, Settings, api_disabled, denied_permission, describe, logged, service_message,
    source_name,
};
use crate::clouds::{call, run_source};
use crate::core::event::CollectEvent;
use crate::core::model::Cloud;

/// Folders nest at most 10 deep under an organization (Google's own limit); a folder deeper
/// than that below a configured one is not walked, and the walk says so.
const MAX_DEPTH: usize = 10;
/// Folders walked under one configured folder or organization, at most.
const MAX_FOLDERS: usize = 20_000;
/// Pages followed per listing, at most: a listing that goes on past them is cut, and said so.
const MAX_PAGES: usize = 1_000;
/// The page asked for; Resource Manager may give fewer.
const PAGE_SIZE: i32 = 500;
/// Folders listed at once per walk (two calls each: its projects and its sub-folders).
const LISTINGS: usize = 4;

/// Where the projects found go: each once, announced as waiting, then queued for collection.
/// Dropped, it closes the queue.
pub(super) struct Found {
    known: Mutex<HashSet<String>>,
    queue: UnboundedSender<String>,
    tx: mpsc::Sender<CollectEvent>,
}

impl Found {
    /// `configured`: the projects collected anyway, never queued a second time.
    pub fn new(
        configured: &[String],
        queue: UnboundedSender<String>,
        tx: mpsc::Sender<CollectEvent>,
    ) -> Found {
        Found {
            known: Mutex::new(configured.iter().cloned().collect()),
            queue,
            tx,
        }
    }

    /// Takes `project` into the collection unless it is there already. False once nobody
    /// listens any more.
    async fn project(&self, project: &str) -> bool {
        let new = self
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(project.to_owned());
        if !new {
            return true;
        }
        let waiting = CollectEvent::Waiting {
            source: source_name(project),
            cloud: Cloud::Gcp,
            account: None,
        };
        self.tx.send(waiting).await.is_ok() && self.queue.unbounded_send(project.to_owned()).is_ok()
    }
}

/// Walks every configured folder and organization at once, each to an end of its own within
/// `gcp.deadline_secs`: finished; incomplete when part of it could not be listed (the projects
/// found elsewhere in it are collected all the same); failed when nothing in it could.
pub(super) async fn walk_all(directory: &Directory, settings: &Settings, found: &Found) {
    let walks = settings.scopes.iter().map(|scope| async move {
        let source = source_name(scope);
        let work = async {
            let event = match walk(directory, scope, found).await {
                Ok(None) => CollectEvent::Finished {
                    source: source.clone(),
                },
                Ok(Some(gap)) => CollectEvent::Incomplete {
                    source: source.clone(),
                    error: gap,
                },
                Err(error) => CollectEvent::Failed {
                    source: source.clone(),
                    error,
                },
            };
            let _ = found.tx.send(event).await;
        };
        run_source(&source, settings.deadline, &found.tx, work).await;
    });
    futures::future::join_all(walks).await;
}

/// Lists everything under `scope`: `Ok(None)` when all of it was listed, `Ok(Some(what))` when
/// part could not be, `Err` when nothing could.
async fn walk(directory: &Directory, scope: &str, found: &Found) -> Result<Option<String>, String> {
    if !is_parent(scope) {
        return Err(format!(
            "{scope} is not a folder or organization: gcp.folders takes folders/123 or 123, gcp.organizations organizations/456 or 456"
        ));
    }
    let mut gaps: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::from([scope.to_owned()]);
    let mut pending: VecDeque<(String, usize)> = VecDeque::from([(scope.to_owned(), 0)]);
    let mut walked = 0usize;
    let mut not_walked = 0usize;
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < LISTINGS
            && let Some((parent, depth)) = pending.pop_front()
        {
            running.push(async move {
                let listed = list(directory, &parent, found).await;
                (parent, depth, listed)
            });
        }
        let Some((parent, depth, listed)) = running.next().await else {
            break;
        };
        if listed.unheard {
            return Ok(None);
        }
        if !listed.refusals.is_empty() {
            let sentence = cannot_list(&parent, &listed.refusals);
            if parent == scope && !listed.any {
                return Err(sentence);
            }
            gaps.push(sentence);
        }
        for child in listed.folders {
            // A folder named twice (an answer that loops back) is walked once.
            if !seen.insert(child.clone()) {
                continue;
            }
            if depth + 1 > MAX_DEPTH || walked >= MAX_FOLDERS {
                not_walked += 1;
                continue;
            }
            walked += 1;
            pending.push_back((child, depth + 1));
        }
    }
    if not_walked > 0 {
        gaps.push(format!(
            "{not_walked} folders past {MAX_DEPTH} levels deep or past the first {MAX_FOLDERS} were not walked"
        ));
    }
    Ok(match gaps.len() {
        0 => None,
        1 => gaps.pop(),
        n => Some(format!(
            "{}; and {} more could not be listed",
            gaps[0],
            n - 1
        )),
    })
}

/// `folders/123` or `organizations/456`: what Resource Manager takes as a parent.
fn is_parent(name: &str) -> bool {
    let id = name
        .strip_prefix("folders/")
        .or_else(|| name.strip_prefix("organizations/"));
    id.is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// What listing one folder or organization gave.
#[derive(Default)]
struct Listed {
    /// Its ACTIVE sub-folders.
    folders: Vec<String>,
    /// Why a listing of it failed, each.
    refusals: Vec<Refusal>,
    /// True when at least one of its two listings answered.
    any: bool,
    /// Nobody listens for the projects found any more: the walk can stop.
    unheard: bool,
}

/// Its projects (each handed to `found` as it is seen) and its sub-folders, listed together.
async fn list(directory: &Directory, parent: &str, found: &Found) -> Listed {
    let (projects, folders) = futures::join!(
        list_projects(directory, parent, found),
        list_folders(directory, parent),
    );
    let mut listed = Listed::default();
    match projects {
        Ok(heard) => {
            listed.any = true;
            listed.unheard = !heard;
        }
        Err(refusal) => listed.refusals.push(refusal),
    }
    match folders {
        Ok(folders) => {
            listed.any = true;
            listed.folders = folders;
        }
        Err(refusal) => listed.refusals.push(refusal),
    }
    listed
}

/// Hands every ACTIVE project directly under `parent` to `found`; false once nobody listens.
async fn list_projects(
    directory: &Directory,
    parent: &str,
    found: &Found,
) -> Result<bool, Refusal> {
    const PERMISSION: &str = "resourcemanager.projects.list";
    let mut pages = directory
        .projects
        .list_projects()
        .set_parent(parent)
        .set_page_size(PAGE_SIZE)
        .by_page();
    let what = format!("projects.list in {parent}");
    let mut count = 0;
    while let Some(page) = call(what.as_str(), pages.next()).await {
        let page = page.map_err(|e| refusal(&e, PERMISSION))?;
        // Resource Manager lists only ACTIVE projects unless asked for the others; the state
        // is checked all the same.
        for found_project in page
            .projects
            .iter()
            .filter(|p| p.state == project::State::Active && !p.project_id.is_empty())
        {
            if !found.project(&found_project.project_id).await {
                return Ok(false);
            }
        }
        count += 1;
        if count >= MAX_PAGES && !page.next_page_token.is_empty() {
            return Err(cut_off("projects"));
        }
    }
    Ok(true)
}

/// The ACTIVE folders directly under `parent`.
async fn list_folders(directory: &Directory, parent: &str) -> Result<Vec<String>, Refusal> {
    const PERMISSION: &str = "resourcemanager.folders.list";
    let mut pages = directory
        .folders
        .list_folders()
        .set_parent(parent)
        .set_page_size(PAGE_SIZE)
        .by_page();
    let what = format!("folders.list in {parent}");
    let mut folders = Vec::new();
    let mut count = 0;
    while let Some(page) = call(what.as_str(), pages.next()).await {
        let page = page.map_err(|e| refusal(&e, PERMISSION))?;
        folders.extend(
            page.folders
                .into_iter()
                .filter(|f| f.state == folder::State::Active && is_parent(&f.name))
                .map(|f| f.name),
        );
        count += 1;
        if count >= MAX_PAGES && !page.next_page_token.is_empty() {
            return Err(cut_off("folders"));
        }
    }
    Ok(folders)
}

/// Why one listing failed.
#[derive(Debug, Clone, PartialEq)]
enum Refusal {
    /// The credential lacks this permission there.
    Denied(String),
    Other(String),
}

fn cut_off(what: &str) -> Refusal {
    Refusal::Other(format!(
        "more than {MAX_PAGES} pages of {what}: the rest was not listed"
    ))
}

fn refusal(error: &Error, permission: &str) -> Refusal {
    match error.http_status_code() {
        Some(403) if api_disabled(error) => {
            let message = service_message(error).0.unwrap_or_default();
            Refusal::Other(logged(
                format!("Cloud Resource Manager API disabled (403): {message}"),
                error,
            ))
        }
        // Resource Manager answers 403 for a folder that does not exist as well.
        Some(403) => {
            let permission = denied_permission(error).unwrap_or_else(|| permission.to_owned());
            logged(format!("permission denied ({permission})"), error);
            Refusal::Denied(permission)
        }
        _ if error.is_deserialization() => Refusal::Other(logged(
            "the answer could not be read (not the JSON Resource Manager sends)".to_owned(),
            error,
        )),
        // Timed out, cannot connect, no token, throttled, a server error: as for Compute.
        _ => Refusal::Other(describe(error)),
    }
}

/// One sentence for the listings of `parent` that failed: the permissions missing together,
/// then anything else.
fn cannot_list(parent: &str, refusals: &[Refusal]) -> String {
    let mut denied: Vec<&str> = Vec::new();
    let mut other: Vec<&str> = Vec::new();
    for refusal in refusals {
        let (list, text) = match refusal {
            Refusal::Denied(permission) => (&mut denied, permission.as_str()),
            Refusal::Other(text) => (&mut other, text.as_str()),
        };
        if !list.contains(&text) {
            list.push(text);
        }
    }
    let mut parts: Vec<String> = Vec::new();
    if !denied.is_empty() {
        // Resource Manager refuses a folder that does not exist the same way.
        parts.push(format!(
            "permission denied ({}), or it does not exist",
            denied.join(", ")
        ));
    }
    parts.extend(other.into_iter().map(str::to_owned));
    format!("cannot list {parent}: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_folders_or_organizations_by_number() {
        assert!(is_parent("folders/123"));
        assert!(is_parent("organizations/456"));
        for wrong in [
            "folders/",
            "folders/abc",
            "projects/123",
            "123",
            "organizations/45 6",
            "folders/1/2",
        ] {
            assert!(!is_parent(wrong), "{wrong}");
        }
    }

    #[test]
    fn failed_listings_make_one_sentence() {
        let projects = Refusal::Denied("resourcemanager.projects.list".into());
        let folders = Refusal::Denied("resourcemanager.folders.list".into());
        assert_eq!(
            cannot_list("folders/999", std::slice::from_ref(&projects)),
            "cannot list folders/999: permission denied (resourcemanager.projects.list), or it does not exist"
        );
        assert_eq!(
            cannot_list("folders/999", &[projects, folders]),
            "cannot list folders/999: permission denied (resourcemanager.projects.list, resourcemanager.folders.list), or it does not exist"
        );
        let slow = Refusal::Other("timed out".into());
        assert_eq!(
            cannot_list("organizations/1", &[slow.clone(), slow]),
            "cannot list organizations/1: timed out"
        );
    }
}
