namespace CoeffTune.Assets;

/// <summary>Every asset <c>coefftune fetch</c> knows, by name.</summary>
public static class AssetCatalog
{
    private static readonly List<IAsset> assets = new();

    public static IReadOnlyList<IAsset> All { get { KnownAssets.EnsureRegistered(); return assets; } }

    public static void Register(IAsset asset)
    {
        lock (assets)
            if (!assets.Any(a => a.Name == asset.Name)) assets.Add(asset);
    }

    public static IAsset Find(string name) =>
        All.FirstOrDefault(a => string.Equals(a.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown asset '{name}'; known: {string.Join(", ", All.Select(a => a.Name))}");

    /// <summary>
    /// Fetches the asset unless already present; returns its folder. The cached copy is checked against its pinned
    /// hash: a damaged one is a <see cref="DamagedAssetException"/>, which says how to fetch it again.
    /// </summary>
    public static string Ensure(string name, AssetCache? cache = null, TextWriter? log = null)
    {
        cache ??= AssetCache.Default;
        var asset = Find(name);
        var dir = asset.IsPresent(cache) ? cache.PathFor(asset.Name) : asset.Fetch(cache, log ?? TextWriter.Null);
        if (asset.Verify(cache) is { } problem)
            throw new DamagedAssetException(asset.Name, cache.PathFor(asset.Name), problem);
        return dir;
    }
}
