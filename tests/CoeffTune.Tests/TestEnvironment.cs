using System.Runtime.CompilerServices;
using CoeffTune.Assets;

namespace CoeffTune.Tests;

/// <summary>
/// The tests keep fetched models and datasets in the source tree's git-ignored .cache folder (as the
/// ./coefftune script does), unless COEFFTUNE_CACHE names another: the library's own default is the
/// user's cache folder, wherever it runs from.
/// </summary>
internal static class TestEnvironment
{
    /// <summary>The root of the source tree the tests were built from (the folder holding CoeffTune.slnx), or null.</summary>
    public static string? SourceRoot { get; } = FindSourceRoot();

    /// <summary>COEFFTUNE_CACHE as the test run was started with (null when unset).</summary>
    public static string? CacheVariableAtStart { get; private set; }

    [ModuleInitializer]
    internal static void UseRepositoryCache()
    {
        CacheVariableAtStart = Environment.GetEnvironmentVariable(AssetCache.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(CacheVariableAtStart)) return;
        if (SourceRoot is not null)
            Environment.SetEnvironmentVariable(AssetCache.EnvironmentVariable, Path.Combine(SourceRoot, ".cache"));
    }

    private static string? FindSourceRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "CoeffTune.slnx")) && Directory.Exists(Path.Combine(dir.FullName, "src", "CoeffTune")))
                return dir.FullName;
        return null;
    }
}
