namespace CoeffTune.Assets;

/// <summary>
/// Where downloaded models and datasets live: $COEFFTUNE_CACHE if set, otherwise the git-ignored
/// ".cache" folder at the root of the source tree the program runs from, otherwise ~/.cache/coefftune.
/// </summary>
public sealed class AssetCache
{
    public string Root { get; }

    public AssetCache(string root)
    {
        Root = Path.GetFullPath(root);
    }

    public static AssetCache Default { get; } = new(ResolveDefaultRoot());

    /// <summary>The folder for one asset (not created).</summary>
    public string PathFor(string name) => Path.Combine(Root, name);

    /// <summary>The root of the source tree (the folder holding src/CoeffTune), or null.</summary>
    public static string? FindSourceRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "src", "CoeffTune")) && File.Exists(Path.Combine(dir.FullName, "README.md")))
                return dir.FullName;
        return null;
    }

    private static string ResolveDefaultRoot()
    {
        var env = Environment.GetEnvironmentVariable("COEFFTUNE_CACHE");
        if (!string.IsNullOrWhiteSpace(env)) return env;
        var src = FindSourceRoot();
        if (src is not null) return Path.Combine(src, ".cache");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "coefftune");
    }
}
