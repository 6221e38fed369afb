using CoeffTune.Methods;
using CoeffTune.Models;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Models;

/// <summary>The families' name maps against the names Hugging Face transformers and timm give the same tensors.</summary>
public sealed class NameMapTests
{
    [Theory]
    [InlineData("embeddings.norm.weight", "bert.embeddings.LayerNorm.weight")]
    [InlineData("embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight")]
    [InlineData("layers.1.attention.key.bias", "bert.encoder.layer.1.attention.self.key.bias")]
    [InlineData("layers.0.attention.output.weight", "bert.encoder.layer.0.attention.output.dense.weight")]
    [InlineData("layers.0.attention_norm.bias", "bert.encoder.layer.0.attention.output.LayerNorm.bias")]
    [InlineData("layers.1.intermediate.weight", "bert.encoder.layer.1.intermediate.dense.weight")]
    [InlineData("layers.1.output.bias", "bert.encoder.layer.1.output.dense.bias")]
    [InlineData("layers.1.output_norm.weight", "bert.encoder.layer.1.output.LayerNorm.weight")]
    [InlineData("layers.11.attention.mixing.alpha", "bert.encoder.layer.11.attention.self.mixing.alpha")]
    [InlineData("classifier.weight", "classifier.weight")]
    public void Bert_names_read_as_BertForSequenceClassification_names_them(string ours, string theirs)
    {
        var map = BertFamily.Definition.Written;
        Assert.Equal(theirs, map.ToTheirs(ours));
        Assert.Equal(ours, map.ToOurs(theirs));
    }

    [Theory]
    [InlineData("cls_token", "vit.embeddings.cls_token", "cls_token")]
    [InlineData("pos_embed", "vit.embeddings.position_embeddings", "pos_embed")]
    [InlineData("patch_embed.proj.weight", "vit.embeddings.patch_embeddings.projection.weight", "patch_embed.proj.weight")]
    [InlineData("blocks.3.norm1.bias", "vit.encoder.layer.3.layernorm_before.bias", "blocks.3.norm1.bias")]
    [InlineData("blocks.0.attn.value.weight", "vit.encoder.layer.0.attention.attention.value.weight", "blocks.0.attn.value.weight")]
    [InlineData("blocks.0.attn.output.bias", "vit.encoder.layer.0.attention.output.dense.bias", "blocks.0.attn.proj.bias")]
    [InlineData("blocks.2.mlp.fc2.weight", "vit.encoder.layer.2.output.dense.weight", "blocks.2.mlp.fc2.weight")]
    [InlineData("norm.weight", "vit.layernorm.weight", "norm.weight")]
    [InlineData("head.bias", "classifier.bias", "head.bias")]
    public void Vit_names_read_as_transformers_and_timm_name_them(string ours, string huggingFace, string timm)
    {
        var hf = VitFamily.Definition.Written;
        var t = VitFamily.Definition.Layouts.Single(l => l.Layout == "timm");
        Assert.Equal(huggingFace, hf.ToTheirs(ours));
        Assert.Equal(ours, hf.ToOurs(huggingFace));
        Assert.Equal(ours, t.ToOurs(timm));
    }

    [Fact]
    public void Every_parameter_of_both_families_with_every_method_maps_there_and_back()
    {
        using var scope = NewDisposeScope();
        foreach (var (model, family) in new (TorchSharp.torch.nn.Module, ModelFamily)[]
                 { (TinyModels.Bert(), BertFamily.Definition), (TinyModels.Vit(), VitFamily.Definition) })
        {
            PeftModel.Wrap((TransformerClassifier)model, "coeff+dora+ssf");
            foreach (var (name, _) in model.named_parameters())
            {
                var theirs = family.Written.ToTheirs(name);
                Assert.NotNull(theirs);
                Assert.Equal(name, family.Written.ToOurs(theirs!));
            }
        }
    }

    [Fact]
    public void A_checkpoint_tensor_inside_a_known_module_but_unknown_keeps_its_name()
    {
        var map = BertFamily.Definition.Layouts.Single(l => l.Layout == "huggingface-base");
        Assert.Equal("layers.0.attention.query.weight", map.ToOurs("encoder.layer.0.attention.self.query.weight", maxRest: 1));
        Assert.Null(map.ToOurs("encoder.layer.0.attention.self.rotary.weight", maxRest: 1));
    }
}
