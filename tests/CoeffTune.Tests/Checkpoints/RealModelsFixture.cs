using CoeffTune.Assets;
using CoeffTune.Assets.Models;

namespace CoeffTune.Tests.Checkpoints;

/// <summary>
/// Fetches the real sentence encoders and tokenizers once per test run (into $COEFFTUNE_CACHE, else the
/// git-ignored .cache). When the registry cannot be reached, the tests that need them are skipped with the
/// reason, except under CI=true, where a missing asset fails the test: a green CI run means they ran.
/// </summary>
public sealed class RealModelsFixture
{
    private readonly Dictionary<string, string?> unavailable = new();
    public AssetCache Cache { get; } = AssetCache.Default;

    public RealModelsFixture()
    {
        foreach (var name in new[] { "minilm", "arctic-xs", "gpt2" })
        {
            try
            {
                AssetCatalog.Ensure(name, Cache);
                unavailable[name] = null;
            }
            catch (AssetUnavailableException e)
            {
                unavailable[name] = e.Message;
            }
        }
    }

    /// <summary>True when running in CI, where nothing may be skipped.</summary>
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Skips the calling test (fails it in CI) when <paramref name="name"/> could not be fetched.</summary>
    public SentenceTransformerAsset Require(string name)
    {
        RequireAsset(name);
        return AssetCatalog.All.OfType<SentenceTransformerAsset>().Single(a => a.Name == name);
    }

    /// <summary>The folder of a fetched asset; skips the calling test (fails it in CI) when it could not be fetched.</summary>
    public string RequireAsset(string name)
    {
        if (!unavailable.TryGetValue(name, out var reason))
            throw new ArgumentException($"the fixture does not fetch '{name}'");
        if (reason is not null && InCi) Assert.Fail($"{name} could not be fetched, and CI=true allows no skip: {reason}");
        Skip.If(reason is not null, $"{name} could not be fetched: {reason}");
        return Cache.PathFor(name);
    }
}

/// <summary>All tests on real models share one fetch (and never race on the asset registry).</summary>
[CollectionDefinition(Name)]
public sealed class RealModelsCollection : ICollectionFixture<RealModelsFixture>
{
    public const string Name = "real models";
}
