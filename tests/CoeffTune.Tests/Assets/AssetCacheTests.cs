using CoeffTune.Assets;

namespace CoeffTune.Tests.Assets;

public sealed class AssetCacheTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.Where(v => v.Name == name).Select(v => v.Value).FirstOrDefault();

    [Fact]
    public void The_variable_wins_over_the_user_cache_folder()
    {
        var root = AssetCache.DefaultRoot(Env(("COEFFTUNE_CACHE", "/data/ct"), ("XDG_CACHE_HOME", "/x")), "/home/u");
        Assert.Equal("/data/ct", root);
    }

    [Fact]
    public void Without_the_variable_it_is_the_XDG_cache_folder()
    {
        Assert.Equal("/x/cache/coefftune", AssetCache.DefaultRoot(Env(("XDG_CACHE_HOME", "/x/cache")), "/home/u"));
    }

    [Fact]
    public void Without_XDG_it_is_dot_cache_in_the_home_folder()
    {
        Assert.Equal("/home/u/.cache/coefftune", AssetCache.DefaultRoot(Env(), "/home/u"));
        // The XDG specification says a relative XDG_CACHE_HOME is to be ignored; so is an empty variable.
        Assert.Equal("/home/u/.cache/coefftune", AssetCache.DefaultRoot(Env(("XDG_CACHE_HOME", "rel/cache"), ("COEFFTUNE_CACHE", " ")), "/home/u"));
    }

    [Fact]
    public void It_does_not_depend_on_where_the_program_is()
    {
        // The old default looked for a source tree above the program; the tests run inside one.
        var root = AssetCache.DefaultRoot(Env(), "/home/u");
        Assert.DoesNotContain(TestEnvironment.SourceRoot ?? "/nowhere", root);
    }

    [Fact]
    public void The_tests_use_the_repository_cache_unless_told_otherwise()
    {
        Assert.NotNull(TestEnvironment.SourceRoot);
        var expected = string.IsNullOrWhiteSpace(TestEnvironment.CacheVariableAtStart)
            ? Path.Combine(TestEnvironment.SourceRoot!, ".cache")
            : Path.GetFullPath(TestEnvironment.CacheVariableAtStart);
        Assert.Equal(expected, AssetCache.Default.Root);
    }

    [Fact]
    public void The_recorded_version_is_the_info_files_version_key()
    {
        using var dir = new TempDir();
        string Info(string name, string text)
        {
            var path = Path.Combine(dir.Path, name);
            File.WriteAllText(path, text);
            return path;
        }
        Assert.Null(AssetCache.RecordedVersion(Path.Combine(dir.Path, "missing.json")));
        Assert.Equal(3, AssetCache.RecordedVersion(Info("v3.json", "{\"version\": 3, \"seconds\": 1.5}")));
        // Written before versions were recorded: the caller says which version that was.
        Assert.Null(AssetCache.RecordedVersion(Info("old.json", "{\"seconds\": 1.5}")));
        Assert.Equal(1, AssetCache.RecordedVersion(Info("old2.json", "{\"seconds\": 1.5}"), unversioned: 1));
        Assert.Null(AssetCache.RecordedVersion(Info("torn.json", "{\"version\": 3, \"sec"), unversioned: 1));
    }
}
