namespace CoeffTune.Assets;

/// <summary>A real model or dataset that <c>coefftune fetch NAME</c> can bring into the cache.</summary>
public interface IAsset
{
    /// <summary>The name used on the command line, e.g. "minilm" or "fashion-mnist".</summary>
    string Name { get; }
    string Description { get; }
    /// <summary>True when the asset is complete in the cache (fetching again would do nothing).</summary>
    bool IsPresent(AssetCache cache);
    /// <summary>Fetches the asset into <see cref="AssetCache.PathFor"/>(Name); returns that folder.
    /// Throws <see cref="AssetUnavailableException"/> when it cannot be had here, saying why and how to get it by hand.</summary>
    string Fetch(AssetCache cache, TextWriter log);
    /// <summary>Null when the cached copy matches its pinned hash; else what is wrong. Called on every use.</summary>
    string? Verify(AssetCache cache) => null;
}

/// <summary>An asset could not be fetched; the message says why and how to get it by hand.</summary>
public sealed class AssetUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A cached asset no longer matches its pinned hash; deleting <see cref="Folder"/> and fetching again replaces it.</summary>
public sealed class DamagedAssetException(string asset, string folder, string problem)
    : IOException($"{asset}: the cached copy is damaged ({problem}); delete {folder} and fetch it again")
{
    public string Asset { get; } = asset;
    public string Folder { get; } = folder;
    /// <summary>What does not match, e.g. "... has SHA-256 ..., expected ...".</summary>
    public string Problem { get; } = problem;
}
