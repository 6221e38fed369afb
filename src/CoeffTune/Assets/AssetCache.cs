namespace CoeffTune.Assets;

/// <summary>
/// Where downloaded models and datasets live. The default (<see cref="Default"/>) is the folder named by
/// the COEFFTUNE_CACHE environment variable when it is set, otherwise the user's cache folder:
/// $XDG_CACHE_HOME/coefftune, or ~/.cache/coefftune when XDG_CACHE_HOME is unset (or not an absolute path).
/// It does not depend on where the program is installed or run from.
/// </summary>
public sealed class AssetCache
{
    /// <summary>The environment variable that overrides the default cache folder.</summary>
    public const string EnvironmentVariable = "COEFFTUNE_CACHE";

    public string Root { get; }

    public AssetCache(string root)
    {
        Root = Path.GetFullPath(root);
    }

    /// <summary>The cache at <see cref="DefaultRoot()"/>, resolved once per process.</summary>
    public static AssetCache Default { get; } = new(DefaultRoot());

    /// <summary>The folder for one asset (not created).</summary>
    public string PathFor(string name) => Path.Combine(Root, name);

    /// <summary>
    /// The code version a model made here records in its info file (the "version" key of <paramref name="infoPath"/>'s
    /// JSON): <paramref name="unversioned"/> when the file has no such key, null when the file is missing or unreadable.
    /// A model whose version differs from its code's is made anew.
    /// </summary>
    public static int? RecordedVersion(string infoPath, int? unversioned = null)
    {
        if (!File.Exists(infoPath)) return null;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(infoPath));
            return doc.RootElement.TryGetProperty("version", out var v) && v.TryGetInt32(out int n) ? n : unversioned;
        }
        catch (System.Text.Json.JsonException) { return null; }
    }

    /// <summary>The default cache folder for this process's environment (see the class summary).</summary>
    public static string DefaultRoot() =>
        DefaultRoot(Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    /// <summary>The default cache folder for the given environment variables and home folder.</summary>
    public static string DefaultRoot(Func<string, string?> environment, string? home)
    {
        var explicitRoot = environment(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(explicitRoot)) return Path.GetFullPath(explicitRoot);
        // The XDG base directory specification says relative paths are to be ignored.
        var xdg = environment("XDG_CACHE_HOME");
        if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathFullyQualified(xdg)) return Path.Combine(xdg, "coefftune");
        if (!string.IsNullOrWhiteSpace(home)) return Path.Combine(home, ".cache", "coefftune");
        // No home folder (some service accounts): a per-machine folder is better than the working directory.
        return Path.Combine(Path.GetTempPath(), "coefftune-cache");
    }
}
