// Where a model named on the command line or in a config is: the local file or folder when it exists, else a
// repo id's snapshot in the Hugging Face cache, else (network allowed) that repo downloaded into the cache
// first, as diffusers' from_pretrained does. The one owner of that decision: every place a model is named
// (generate/compare --model, model.path, caption/pipeline --blip, samples.clip_model) resolves through here.
//
// Downloads are allowed unless HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is true, the switch diffusers and
// transformers already obey; there is no Inkwell-only one, so one setting keeps every tool off the network.
import Foundation

public enum ModelLocation {
    /// The folder or file `text` names. `variant` is the weights variant a download picks (diffusers' `fp16`,
    /// as `inkwell download --variant`); a model already in the cache is used as it is, without a request.
    /// Errors begin with the local path and say what was tried.
    public static func resolve(_ text: String, variant: String? = nil,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        let local = URL(fileURLWithPath: (text as NSString).expandingTildeInPath)
        if FileManager.default.fileExists(atPath: local.path) { return local }
        guard let id = HubRepoID(text) else { throw HubCacheError(subject: local.path, message: "no such file or folder") }
        func failure(_ error: Any) -> HubCacheError {
            HubCacheError(subject: local.path, message: "no such file or folder, and as a Hugging Face repo id: \(error)")
        }
        let settings = HubSettings(environment: environment)
        do {
            return try HubCache.snapshot(id, environment: environment)
        } catch let missing as HubCacheError {
            guard !settings.offline else {
                throw failure("\(missing) (HF_HUB_OFFLINE is set, so Inkwell does not download it)")
            }
        }
        do {
            return try ModelFetcher.download(id, variant: variant, settings: settings)
        } catch {
            throw failure(error)
        }
    }

    /// Whether resolving `text` would download: no such local path, a repo id the cache lacks, and the network
    /// allowed. Checks that find other problems leave such a model for later, so a typo elsewhere is reported
    /// at once, not after gigabytes.
    public static func needsDownload(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        let local = URL(fileURLWithPath: (text as NSString).expandingTildeInPath)
        guard !FileManager.default.fileExists(atPath: local.path), let id = HubRepoID(text) else { return false }
        return (try? HubCache.snapshot(id, environment: environment)) == nil && !HubSettings(environment: environment).offline
    }
}
