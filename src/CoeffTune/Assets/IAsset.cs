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
